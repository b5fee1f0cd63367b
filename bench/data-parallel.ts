/**
 * Data parallel on this machine: the same global batch as one process (R = 1) and as two MPI ranks (R = 2),
 * `bun run cli train` on the bundled model; median step time and the all-reduce's share, from metrics.jsonl.
 *   bun bench/data-parallel.ts [--steps 6] [--batch 4]
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { steps: { type: "string", default: "6" }, batch: { type: "string", default: "4" } },
});
const root = resolve(import.meta.dir, "..");
const global = Number(values.batch);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function run(ranks: number): { step: number; allreduce: number } {
  const dir = join(mkdtempSync(join(tmpdir(), "tc-dp-bench-")), "run");
  const train = [
    "bun",
    "packages/cli/src/main.ts",
    "train",
    "--run-dir",
    dir,
    "--steps",
    values.steps!,
    "--batch-size",
    String(global / ranks),
    "--eval-limit",
    "0",
    "--sample-every",
    "1000",
  ];
  const command =
    ranks === 1
      ? train
      : ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", String(ranks), "-x", "XDG_RUNTIME_DIR", ...train];
  const p = Bun.spawnSync(command, { cwd: root, env: { ...process.env, XDG_RUNTIME_DIR: "/tmp" } });
  if (p.exitCode !== 0) throw new Error(`${command.join(" ")} failed:\n${p.stderr.toString()}`);
  // The first step compiles the shaders: leave it out.
  const steps = readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .slice(1);
  return { step: median(steps.map((s) => s.seconds)), allreduce: median(steps.map((s) => s.allreduceSeconds ?? 0)) };
}

const one = run(1),
  two = run(2);
console.log(`global batch ${global}, ${values.steps} steps (first left out), bundled model`);
console.log(`R = 1: ${one.step.toFixed(2)} s/step`);
console.log(
  `R = 2: ${two.step.toFixed(2)} s/step (${(two.step / one.step).toFixed(2)}× R = 1), all-reduce ${two.allreduce.toFixed(3)} s (${((100 * two.allreduce) / two.step).toFixed(1)} % of the step)`,
);
