/**
 * An output folder (`train --run-dir`, `generate --out`) is checked before minutes of model loading: it must be a
 * folder (created if missing) that this process can write, or the user gets one line saying which and why, not a
 * stack trace from deep in a save.
 */
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export function prepareRunDir(runDir: string, flag = "--run-dir"): void {
  const problem = (why: string) => new Error(`${flag} ${runDir}: ${why}`);
  if (existsSync(runDir) && !statSync(runDir).isDirectory())
    throw problem("is a file, not a folder; give a folder path (it is created if missing)");
  try {
    mkdirSync(runDir, { recursive: true });
  } catch (e) {
    const { code, message } = e as NodeJS.ErrnoException;
    if (code === "EEXIST" || code === "ENOTDIR")
      throw problem("cannot be created: a folder above it is a file; give a folder path");
    throw problem(`cannot be created (${code ?? message}); choose a folder you can write to`);
  }
  // Permission bits do not tell a read-only mount or an ACL: try a real write.
  const probe = join(runDir, `.write-test-${process.pid}`);
  try {
    writeFileSync(probe, "");
  } catch (e) {
    throw problem(
      `is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); choose a folder you can write to`,
    );
  }
  rmSync(probe, { force: true });
}
