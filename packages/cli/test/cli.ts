/** Runs `bun run cli …` from the repository root in a child process, for the CLI tests. */
import { resolve } from "node:path";

const root = resolve(import.meta.dir, "../../..");

export const cli = (...args: string[]) => cliWithEnv({}, ...args);

/** The same, with extra environment variables. */
export function cliWithEnv(env: Record<string, string>, ...args: string[]) {
  const p = Bun.spawnSync(["bun", "packages/cli/src/main.ts", ...args], {
    cwd: root,
    env: { ...process.env, XDG_RUNTIME_DIR: "/tmp", ...env },
  });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}
