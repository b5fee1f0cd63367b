/** A static file server for the built page (fetch needs http://; a page opened from file:// cannot load its model). */
import { join, normalize } from "node:path";

export function serveFolder(folder: string, port = 0): ReturnType<typeof Bun.serve> {
  return Bun.serve({
    port,
    async fetch(request) {
      const path = normalize(decodeURIComponent(new URL(request.url).pathname));
      // normalize leaves no ".." inside an absolute path, so the file is always within the folder.
      const file = Bun.file(join(folder, path.endsWith("/") ? `${path}index.html` : path));
      return (await file.exists()) ? new Response(file) : new Response("not found", { status: 404 });
    },
  });
}
