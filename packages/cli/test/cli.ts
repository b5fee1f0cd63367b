/** Runs `bun run cli …` from the repository root in a child process, for the CLI tests. */
import { resolve } from "node:path";

const root = resolve(import.meta.dir, "../../..");

export function cli(...args: string[]) {
  const p = Bun.spawnSync(["bun", "packages/cli/src/main.ts", ...args], { cwd: root, env: { ...process.env, XDG_RUNTIME_DIR: "/tmp" } });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}
