/**
 * Data-parallel training on Open MPI: `mpirun -np 2 bun run cli train --batch-size 2` (global batch 4) must end
 * where one process with `--batch-size 4` does. Rank 0 alone writes the run folder.
 */
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { readWeights } from "@textcraftor/core";
import { cli } from "./cli.ts";

const root = resolve(import.meta.dir, "../../..");
const settings = ["--steps", "2", "--eval-limit", "0", "--sample-every", "100"];
const encoder = async (run: string) => {
  const dir = join(run, "text_encoder");
  return readWeights(join(dir, readdirSync(dir).find((f) => f.endsWith(".safetensors"))!));
};

test("two MPI ranks with batch 2 each train as one process with batch 4", async () => {
  const base = mkdtempSync(join(tmpdir(), "tc-dp-"));
  const [single, ranks] = [join(base, "single"), join(base, "ranks")];
  const one = cli("train", "--run-dir", single, "--batch-size", "4", ...settings);
  expect(one.code, one.err).toBe(0);
  const p = Bun.spawnSync(
    [
      "mpirun",
      "--allow-run-as-root",
      "--oversubscribe",
      "-np",
      "2",
      "-x",
      "XDG_RUNTIME_DIR",
      "bun",
      "packages/cli/src/main.ts",
      "train",
      "--run-dir",
      ranks,
      "--batch-size",
      "2",
      ...settings,
    ],
    { cwd: root, env: { ...process.env, XDG_RUNTIME_DIR: "/tmp" } },
  );
  expect(p.exitCode, p.stderr.toString()).toBe(0);
  // One metrics line per step, written once (rank 0), with the global batch's loss.
  const lines = (run: string) =>
    readFileSync(join(run, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
  expect(lines(ranks)).toHaveLength(2);
  lines(ranks).forEach((m, i) => expect(m.loss).toBeCloseTo(lines(single)[i].loss, 5));
  expect(existsSync(join(ranks, "report.html"))).toBe(true);
  const [a, b] = [await encoder(single), await encoder(ranks)];
  for (const [name, t] of a) {
    // A key projection's bias cannot change attention (softmax ignores a per-query constant), so its gradient is
    // rounding noise, which AdamW turns into full steps either way: it is the one tensor that may differ.
    if (name.endsWith("self_attn.k_proj.bias")) continue;
    const u = b.get(name)!.data;
    let num = 0,
      den = 0;
    for (let i = 0; i < t.data.length; i++) {
      num += (t.data[i]! - u[i]!) ** 2;
      den += t.data[i]! ** 2;
    }
    expect(Math.sqrt(num / Math.max(den, 1e-30)), name).toBeLessThan(1e-5);
  }
}, 900_000);
