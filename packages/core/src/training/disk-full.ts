/**
 * A full disk mid-run reads as what it is: which file could not be written, and that the last checkpoint is
 * intact (checkpoints are written atomically and a half-written one is removed), so freeing space and resuming
 * loses nothing but the steps since.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** `error` itself unless it is ENOSPC; then an error naming the path and the run's last checkpoint. */
export function explainDiskFull(error: unknown, runDir: string): unknown {
  const { code, path } = (error ?? {}) as NodeJS.ErrnoException;
  if (code !== "ENOSPC") return error;
  const latest = join(runDir, "checkpoints", "latest.json");
  let folder: string | undefined;
  try {
    folder = existsSync(latest) ? (JSON.parse(readFileSync(latest, "utf8")) as { folder?: string }).folder : undefined;
  } catch {
    folder = undefined; // latest.json is written atomically; unreadable means foreign content
  }
  const checkpoint = folder
    ? `The last checkpoint, ${join(runDir, "checkpoints", folder)}, is intact: free some space and continue with --resume.`
    : "No checkpoint had been saved yet: free some space and start the run again.";
  return new Error(`no space left on the device while writing ${path ?? `in ${runDir}`}. ${checkpoint}`, {
    cause: error,
  });
}
