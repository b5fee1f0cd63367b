import { open, rename, rm } from "node:fs/promises";

/**
 * Writes `bytes` to `path` so that a reader sees the old file or the whole new one, never a torn write
 * (a crash mid-checkpoint must not destroy the last good checkpoint): write a temporary file beside
 * it, flush it to disk, then rename it over `path`, which is atomic within one filesystem.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const file = await open(tmp, "w");
    try {
      await file.writeFile(bytes);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    // A failed write (ENOSPC) carries no path; name the file the caller wanted.
    if (e instanceof Error && !("path" in e)) Object.assign(e, { path });
    throw e;
  }
}
