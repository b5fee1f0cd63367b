/**
 * The same image under Bun, Node and Deno, back to back: the published tarballs installed as pack:check installs
 * them, then scripts/pack-check/generate.mjs (bundled tiny model, 6 DDIM steps, 32×32) run `--reps` times per
 * runtime, interleaved so that load from other processes hits all three alike. Prints a Markdown table of medians
 * and each runtime's ratio to Bun.
 *
 *   bun bench/runtimes.ts [--reps 3] [--cold]
 *
 * `--cold` disables Mesa's on-disk shader cache (MESA_SHADER_CACHE_DISABLE): every pipeline is compiled by LLVM
 * again, as on a fresh machine. Without it, the first run of each runtime fills the cache and is not counted.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { packPackages } from "../scripts/pack.ts";
import { generateUnder, installTarballs, RUNTIMES, type RuntimeResult } from "../scripts/pack-check.ts";

const { values } = parseArgs({
  options: { reps: { type: "string", default: "3" }, cold: { type: "boolean", default: false } },
});
const reps = Number(values.reps);
if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps must be a whole number >= 1 (got ${values.reps})`);
const env: Record<string, string> = values.cold ? { MESA_SHADER_CACHE_DISABLE: "true" } : {};
const runtimes = ["bun", "node", "deno"].filter((r) => r in RUNTIMES);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

const dir = mkdtempSync(join(tmpdir(), "textcraftor-runtimes-"));
try {
  installTarballs(packPackages(), dir);
  if (!values.cold) for (const r of runtimes) generateUnder(r, dir); // fills the shader cache for each runtime
  const runs = new Map<string, { total: number; result: RuntimeResult }[]>(runtimes.map((r) => [r, []]));
  for (let i = 0; i < reps; i++) {
    for (const r of runtimes) {
      const started = performance.now();
      const result = generateUnder(r, dir, env);
      runs.get(r)!.push({ total: (performance.now() - started) / 1000, result });
      console.error(`${r} #${i + 1}: ${result.sampleSeconds.toFixed(2)} s sampling`);
    }
  }
  const row = (r: string) => {
    const xs = runs.get(r)!;
    return {
      sample: median(xs.map((x) => x.result.sampleSeconds)),
      load: median(xs.map((x) => x.result.loadSeconds)),
      total: median(xs.map((x) => x.total)),
    };
  };
  const bun = row("bun");
  console.log(`| runtime | binding | load (s) | 6-step image (s) | process (s) | image / Bun | process / Bun |`);
  console.log(`|---|---|---:|---:|---:|---:|---:|`);
  for (const r of runtimes) {
    const m = row(r),
      binding = runs.get(r)![0]!.result.binding;
    console.log(
      `| ${r} | ${binding} | ${m.load.toFixed(2)} | ${m.sample.toFixed(2)} | ${m.total.toFixed(2)} | ${(m.sample / bun.sample).toFixed(2)} | ${(m.total / bun.total).toFixed(2)} |`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
