/**
 * The run's JSONL logs (metrics.jsonl, samples.jsonl) on resume: steps after the checkpoint were logged by the
 * interrupted process and are about to be redone, so their lines go, as does a line torn by a kill mid-write.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../io/atomic.ts";

export const RUN_LOGS = ["metrics.jsonl", "samples.jsonl"] as const;

/** Keeps the lines of `file` whose `step` is at most `step`; returns how many lines were dropped. */
export async function truncateLog(file: string, step: number): Promise<number> {
  if (!existsSync(file)) return 0;
  const lines = (await readFile(file, "utf8")).split("\n").filter((l) => l.trim() !== "");
  const kept = lines.filter((line) => {
    try {
      const s = (JSON.parse(line) as { step?: unknown }).step;
      return typeof s === "number" && s <= step;
    } catch {
      return false;
    }
  });
  if (kept.length !== lines.length)
    await writeFileAtomic(file, new TextEncoder().encode(kept.map((l) => l + "\n").join("")));
  return lines.length - kept.length;
}
