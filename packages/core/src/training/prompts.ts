/**
 * Training prompts from a user's file: plain text (one per line), a TSV/CSV with a `Prompt` column (the
 * Parti-Prompts format), or a JSON list of strings. Text is UTF-8, or UTF-8/UTF-16 (LE or BE) marked by a
 * byte-order mark, as editors and Excel save it; lines end in LF, CRLF or CR. Batches are a seeded shuffle per
 * epoch, so step n always sees the same prompts — which is what makes `--resume` exact.
 */
import { readFile } from "node:fs/promises";
// The package's browser build: the same parser carrying its own Buffer, so the core also imports in a browser.
import { parse } from "csv-parse/browser/esm/sync";
import { Rng } from "../nn/init.ts";

/** Any problem with a prompt file; the message names the file (and the line, where there is one). */
export class PromptFileError extends Error {
  override name = "PromptFileError";
}

export async function readPrompts(path: string): Promise<string[]> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new PromptFileError(`cannot read the prompt file ${path}: ${(e as Error).message}`);
  }
  return parsePromptFile(bytes, path);
}

/** The prompts in a prompt file's bytes; `path` chooses the format by its extension and names the file in errors. */
export function parsePromptFile(bytes: Uint8Array, path: string): string[] {
  const text = decodeText(bytes, path).replace(/\r\n?/g, "\n");
  const nul = text.indexOf("\0");
  if (nul >= 0)
    fail(
      path,
      `line ${lineOf(text, nul)} holds a NUL character: this is a binary file, or UTF-16 without a byte-order mark; save it as UTF-8 text`,
    );
  const prompts = parsePrompts(text, path)
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  if (!prompts.length)
    fail(
      path,
      `it holds no prompts (expected one per line, a TSV/CSV with a "Prompt" column, or a JSON list of strings)`,
    );
  return prompts;
}

const BOMS: [bom: number[], encoding: "utf-8" | "utf-16le" | "utf-16be"][] = [
  [[0xef, 0xbb, 0xbf], "utf-8"],
  [[0xff, 0xfe], "utf-16le"],
  [[0xfe, 0xff], "utf-16be"],
];

/** Decodes by byte-order mark (UTF-8 without one); undecodable text is refused with its line number. */
function decodeText(bytes: Uint8Array, path: string): string {
  const [bom, encoding] = BOMS.find(([b]) => b.every((x, i) => bytes[i] === x)) ?? [[], "utf-8"];
  const body = bytes.subarray(bom.length);
  const width = encoding === "utf-8" ? 1 : 2;
  if (body.length % width)
    fail(path, `it starts with a UTF-16 byte-order mark but has an odd number of bytes: it is truncated or not UTF-16`);
  const decoder = new TextDecoder(encoding, { fatal: true, ignoreBOM: true });
  try {
    return decoder.decode(body);
  } catch {
    // Find the line: line breaks (LF, CR) are never part of a multi-unit character in UTF-8 or UTF-16.
    const view = new DataView(body.buffer, body.byteOffset, body.length);
    const unit = (i: number) => (width === 1 ? body[i]! : view.getUint16(i * 2, encoding === "utf-16le"));
    const units = body.length / width;
    let line = 1,
      from = 0;
    for (let i = 0; i <= units; i++) {
      const u = i < units ? unit(i) : 0x0a;
      if (u !== 0x0a && u !== 0x0d) continue;
      try {
        decoder.decode(body.subarray(from * width, i * width));
      } catch {
        fail(
          path,
          `line ${line} is not valid ${encoding.toUpperCase()}; save the file as UTF-8 (or as UTF-16 with a byte-order mark)`,
        );
      }
      if (u === 0x0d && i + 1 < units && unit(i + 1) === 0x0a) i++;
      line++;
      from = i + 1;
    }
    return fail(path, `it is not valid ${encoding.toUpperCase()}`);
  }
}

function parsePrompts(text: string, path: string): string[] {
  if (/\.json$/i.test(path)) {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      fail(path, `it is not valid JSON (${(e as Error).message}); expected a JSON list of prompt strings`);
    }
    if (!Array.isArray(data) || data.some((p) => typeof p !== "string"))
      fail(path, `expected a JSON list of prompt strings`);
    return data as string[];
  }
  if (/\.(tsv|csv)$/i.test(path)) {
    let rows: Record<string, string>[];
    try {
      rows = parse(text, {
        columns: true,
        delimiter: /\.tsv$/i.test(path) ? "\t" : ",",
        skip_empty_lines: true,
        relax_quotes: true,
        relax_column_count: true,
      });
    } catch (e) {
      return fail(path, `it is not a valid ${/\.tsv$/i.test(path) ? "TSV" : "CSV"} file (${(e as Error).message})`);
    }
    const column = rows.length ? Object.keys(rows[0]!).find((c) => c.trim().toLowerCase() === "prompt") : undefined;
    if (!column) fail(path, `no "Prompt" column (columns: ${rows.length ? Object.keys(rows[0]!).join(", ") : "none"})`);
    return rows.map((r) => r[column] ?? "");
  }
  return text.split("\n");
}

const lineOf = (text: string, index: number) => text.slice(0, index).split("\n").length;

function fail(path: string, message: string): never {
  throw new PromptFileError(`prompt file ${path}: ${message}`);
}

/**
 * The prompts of training step `step` (0-based): consecutive slices of a per-epoch seeded permutation. Any
 * items work (the tiny model's recipe batches example indices with it).
 */
export class PromptSampler<T = string> {
  private epoch = -1;
  private order: number[] = [];
  constructor(
    readonly prompts: readonly T[],
    readonly batchSize: number,
    readonly seed: number,
  ) {}

  batch(step: number): T[] {
    const perEpoch = Math.max(1, Math.floor(this.prompts.length / this.batchSize));
    const epoch = Math.floor(step / perEpoch);
    if (epoch !== this.epoch) this.shuffle(epoch);
    const start = (step % perEpoch) * this.batchSize;
    return Array.from(
      { length: this.batchSize },
      (_, i) => this.prompts[this.order[(start + i) % this.order.length]!]!,
    );
  }

  private shuffle(epoch: number) {
    const rng = new Rng((this.seed * 1_000_003 + epoch) >>> 0);
    this.order = this.prompts.map((_, i) => i);
    for (let i = this.order.length - 1; i > 0; i--) {
      const j = Math.floor(rng.next() * (i + 1));
      [this.order[i], this.order[j]] = [this.order[j]!, this.order[i]!];
    }
    this.epoch = epoch;
  }
}
