/**
 * One writer per run folder: two `train` processes on one folder would interleave their logs and checkpoints,
 * and a later --resume would continue from the mix. The lock is a file created exclusively (O_EXCL, atomic on
 * local filesystems) holding the owner's PID, host and process start time; a lock whose process is gone
 * (kill -9, power loss) is stale and taken over.
 */
import { readFileSync, rmSync } from "node:fs";
import { mkdir, open, readFile, rm } from "node:fs/promises";
import { hostname } from "node:os";
import { resolve } from "node:path";

export const RUN_LOCK_FILE = "train.lock";

interface LockOwner {
  pid: number;
  host: string;
  startTime: string | null;
  since: string;
}

export class RunLockedError extends Error {
  override readonly name = "RunLockedError";
}

/**
 * The kernel's start time of a process (field 22 of /proc/PID/stat), which tells a live owner from a new
 * process that reuses a dead owner's PID; null where /proc does not exist (macOS, Windows).
 */
function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

function isAlive(owner: LockOwner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
  return (
    owner.startTime === null || processStartTime(owner.pid) === null || processStartTime(owner.pid) === owner.startTime
  );
}

async function readOwner(path: string): Promise<LockOwner | null> {
  try {
    const owner = JSON.parse(await readFile(path, "utf8")) as LockOwner;
    return Number.isInteger(owner.pid) && typeof owner.host === "string" ? owner : null;
  } catch {
    return null; // torn or foreign content: treated as stale
  }
}

/** Locks this process holds, by lock file, with how many holders: the CLI holds its run folder around train(), which takes it again. */
const held = new Map<string, number>();
// A process that exits holding a lock (an error, Ctrl-C) leaves no lock file behind; only kill -9 does, and that
// one is stale and taken over. (No `process` in a browser, which imports the core but never trains.)
globalThis.process?.once("exit", () => {
  for (const path of held.keys()) rmSync(path, { force: true });
});

export interface RunLock {
  path: string;
  release(): Promise<void>;
}

/**
 * Takes the run folder's lock (creating the folder), or throws RunLockedError naming the live holder; the same
 * process may take it again. Call release() once per acquire: the file goes when the last holder releases.
 */
export async function acquireRunLock(runDir: string): Promise<RunLock> {
  await mkdir(runDir, { recursive: true });
  const path = resolve(runDir, RUN_LOCK_FILE);
  const holders = held.get(path);
  if (holders) {
    held.set(path, holders + 1);
    return { path, release: () => releaseLock(path) };
  }
  const me: LockOwner = {
    pid: process.pid,
    host: hostname(),
    startTime: processStartTime(process.pid),
    since: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const file = await open(path, "wx");
      await file.writeFile(JSON.stringify(me));
      await file.close();
      held.set(path, 1);
      return { path, release: () => releaseLock(path) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const owner = await readOwner(path);
    if (owner && (owner.host !== me.host || isAlive(owner))) {
      const where = owner.host === me.host ? `process ${owner.pid}` : `process ${owner.pid} on ${owner.host}`;
      throw new RunLockedError(
        `${runDir} is in use: ${where} has been training there since ${owner.since} (lock ${path}). ` +
          `Wait for it to finish, stop it, or choose another --run-dir; if that process is gone, delete the lock file.`,
      );
    }
    await rm(path, { force: true }); // stale: its owner is dead
  }
  throw new RunLockedError(`${runDir}: could not take the lock ${path} (another process keeps taking it); try again`);
}

async function releaseLock(path: string): Promise<void> {
  const holders = held.get(path) ?? 0;
  if (holders > 1) return void held.set(path, holders - 1);
  held.delete(path);
  await rm(path, { force: true });
}
