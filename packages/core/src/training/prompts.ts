/**
 * Training prompts from a user's file: plain text (one per line), a TSV/CSV with a `Prompt` column (the
 * Parti-Prompts format), or a JSON list of strings. Batches are a seeded shuffle per epoch, so step n always
 * sees the same prompts — which is what makes `--resume` exact.
 */
import { readFile } from "node:fs/promises";
import { parse } from "csv-parse/sync";
import { Rng } from "../nn/init.ts";

export async function readPrompts(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new Error(`cannot read the prompt file ${path}: ${(e as Error).message}`);
  }
  const prompts = parsePrompts(text, path).map((p) => p.trim()).filter((p) => p.length > 0);
  if (!prompts.length) throw new Error(`${path} holds no prompts (expected one per line, a TSV/CSV with a "Prompt" column, or a JSON list of strings)`);
  return prompts;
}

function parsePrompts(text: string, path: string): string[] {
  if (/\.json$/i.test(path)) {
    const data: unknown = JSON.parse(text);
    if (!Array.isArray(data) || data.some((p) => typeof p !== "string")) throw new Error(`${path}: expected a JSON list of prompt strings`);
    return data as string[];
  }
  if (/\.(tsv|csv)$/i.test(path)) {
    const rows: Record<string, string>[] = parse(text, { columns: true, delimiter: /\.tsv$/i.test(path) ? "\t" : ",", skip_empty_lines: true, relax_quotes: true, relax_column_count: true });
    const column = rows.length ? Object.keys(rows[0]!).find((c) => c.toLowerCase() === "prompt") : undefined;
    if (!column) throw new Error(`${path}: no "Prompt" column (columns: ${rows.length ? Object.keys(rows[0]!).join(", ") : "none"})`);
    return rows.map((r) => r[column] ?? "");
  }
  return text.split(/\r?\n/);
}

/**
 * The prompts of training step `step` (0-based): consecutive slices of a per-epoch seeded permutation. Any
 * items work (the tiny model's recipe batches example indices with it).
 */
export class PromptSampler<T = string> {
  private epoch = -1;
  private order: number[] = [];
  constructor(readonly prompts: readonly T[], readonly batchSize: number, readonly seed: number) {}

  batch(step: number): T[] {
    const perEpoch = Math.max(1, Math.floor(this.prompts.length / this.batchSize));
    const epoch = Math.floor(step / perEpoch);
    if (epoch !== this.epoch) this.shuffle(epoch);
    const start = (step % perEpoch) * this.batchSize;
    return Array.from({ length: this.batchSize }, (_, i) => this.prompts[this.order[(start + i) % this.order.length]!]!);
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
