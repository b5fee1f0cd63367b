/**
 * `bench cli`: whole-command timings of `textcraftor generate` on the bundled tiny model (its 6 DDIM steps, 32×32)
 * under Bun, Node and Deno, through hyperfine: process start, module loading, device, model and sampling, as a
 * user waits for them. The published tarballs are installed as pack:check installs them, so each runtime runs the
 * same built JavaScript. Writes hyperfine's JSON and a Markdown table.
 *
 *   bun bench/cli.ts [--runs 5] [--warmup 1] [--out bench/cli]    → bench/cli.json, bench/cli.md
 *
 * hyperfine is Debian's (`apt-get install hyperfine`); the npm package of that name downloads at install.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { packPackages } from "../scripts/pack.ts";
import { installTarballs } from "../scripts/pack-check.ts";

const root = resolve(import.meta.dir, "..");

/** The command line each runtime runs the installed CLI with. */
export const RUNTIME_COMMANDS: Record<string, (main: string) => string[]> = {
  bun: (main) => [process.execPath, main],
  node: (main) => ["node", main],
  deno: (main) => [join(root, "node_modules/.bin/deno"), "run", "--unstable-webgpu", "--allow-all", main],
};

const quote = (s: string) => (/^[\w./=:@+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** hyperfine's arguments: one named command per runtime, each writing its images under `images/<runtime>`. */
export function hyperfineArgs(
  main: string,
  images: string,
  o: { runs: number; warmup: number; json: string; markdown: string },
): string[] {
  const commands = Object.entries(RUNTIME_COMMANDS).flatMap(([name, cmd]) => [
    "--command-name",
    name,
    [...cmd(main), "generate", "--prompt", "red apple", "--out", join(images, name)].map(quote).join(" "),
  ]);
  return [
    "hyperfine",
    "--runs",
    String(o.runs),
    "--warmup",
    String(o.warmup),
    "--export-json",
    o.json,
    "--export-markdown",
    o.markdown,
    ...commands,
  ];
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "5" },
      warmup: { type: "string", default: "1" },
      out: { type: "string", default: "bench/cli" },
    },
  });
  const runs = Number(values.runs),
    warmup = Number(values.warmup);
  if (!Number.isInteger(runs) || runs < 2 || !Number.isInteger(warmup) || warmup < 0)
    throw new Error(`--runs must be a whole number >= 2 and --warmup >= 0 (got ${values.runs}, ${values.warmup})`);
  if (Bun.spawnSync(["hyperfine", "--version"], { stdout: "ignore", stderr: "ignore" }).exitCode !== 0) {
    throw new Error(
      "hyperfine not found: install Debian's (`apt-get install hyperfine`); the npm package downloads at install and fails offline",
    );
  }
  const dir = mkdtempSync(join(tmpdir(), "textcraftor-bench-cli-"));
  try {
    installTarballs(packPackages(), dir);
    const args = hyperfineArgs(join(dir, "node_modules/@textcraftor/cli/dist/main.js"), join(dir, "images"), {
      runs,
      warmup,
      json: resolve(`${values.out}.json`),
      markdown: resolve(`${values.out}.md`),
    });
    // The warmup runs also fill Mesa's shader cache, which a user's second command finds warm.
    const p = Bun.spawnSync(args, {
      cwd: dir,
      stdout: "inherit",
      stderr: "inherit",
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? "/tmp" },
    });
    if (p.exitCode !== 0) throw new Error(`hyperfine failed (exit ${p.exitCode})`);
    console.log(`wrote ${values.out}.json and ${values.out}.md`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
