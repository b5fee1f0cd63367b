/**
 * A model folder read without a file system: in a browser, `fetchModelFiles(url)` reads the files a server holds
 * beside the page; any other source of bytes (a zip in memory, IndexedDB) is an object with `read`. The loaders
 * take one wherever they take a path.
 */
import type { LoadedTensor } from "../io/dtypes.ts";
import { parseWeights } from "./weights-file.ts";

export interface ModelFiles {
  /** Where the files come from, for messages (a URL without its final slash, a name). */
  readonly location: string;
  /** A file's bytes by its path inside the folder ("unet/config.json"), or null when there is no such file. */
  read(path: string): Promise<Uint8Array | null>;
}

/** One weights file in memory, as `fetch`, a file input or a file read hand it over. */
export type WeightsBytes = Uint8Array | ArrayBuffer | Blob;

export function isModelFiles(x: unknown): x is ModelFiles {
  return typeof x === "object" && x !== null && typeof (x as ModelFiles).read === "function";
}

export async function weightsBytes(source: WeightsBytes): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  return new Uint8Array(await source.arrayBuffer());
}

/**
 * The folder at `base` (a URL; relative URLs resolve against the page) read with `fetch`: HTTP 404 is a missing
 * file, any other failure an error naming the URL.
 */
export function fetchModelFiles(base: string | URL, init?: RequestInit): ModelFiles {
  const page = (globalThis as { location?: { href: string } }).location?.href;
  const text = String(base);
  const root = new URL(text.endsWith("/") ? text : `${text}/`, page);
  return {
    location: root.href.slice(0, -1),
    async read(path) {
      const url = new URL(path, root);
      let response: Response;
      try {
        response = await fetch(url, init);
      } catch (e) {
        throw new Error(`cannot fetch ${url.href}: ${(e as Error).message}`, { cause: e });
      }
      if (response.status === 404) return null;
      if (!response.ok) throw new Error(`cannot fetch ${url.href}: HTTP ${response.status} ${response.statusText}`);
      return new Uint8Array(await response.arrayBuffer());
    },
  };
}

/** A sub-folder of `files` (a diffusers component such as `text_encoder/`). */
export function subFolder(files: ModelFiles, folder: string): ModelFiles {
  return { location: `${files.location}/${folder}`, read: (path) => files.read(`${folder}/${path}`) };
}

export async function readJsonFile(files: ModelFiles, path: string): Promise<Record<string, unknown> | null> {
  const bytes = await files.read(path);
  if (!bytes) return null;
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new Error(`cannot read ${files.location}/${path}: ${(e as Error).message}`);
  }
}

export async function requireJsonFile(files: ModelFiles, path: string, what: string): Promise<Record<string, unknown>> {
  const json = await readJsonFile(files, path);
  if (!json) throw new Error(`${files.location} is not ${what}: ${path} is missing`);
  return json;
}

/**
 * A component's weights: `stem.safetensors`, else `stem.bin`, for the first stem that has one. Sharded and
 * variant-only layouts need a listing of the folder, so they are read from disk only.
 */
export async function readComponentFiles(files: ModelFiles, stems: string[]): Promise<Map<string, LoadedTensor>> {
  for (const stem of stems)
    for (const name of [`${stem}.safetensors`, `${stem}.bin`]) {
      const bytes = await files.read(name);
      if (bytes) return parseWeights(bytes, `${files.location}/${name}`);
    }
  throw new Error(
    `no weights in ${files.location}: expected ${stems.map((s) => `${s}.safetensors`).join(" or ")} or .bin (sharded and variant-only folders load from disk, not from fetched files)`,
  );
}
