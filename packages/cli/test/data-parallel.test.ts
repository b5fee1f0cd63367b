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

const base = mkdtempSync(join(tmpdir(), "tc-dp-"));
const [single, ranks] = [join(base, "single"), join(base, "ranks")];
const mpirun = (runDir: string, ...args: string[]) =>
  Bun.spawn(
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
      runDir,
      "--batch-size",
      "2",
      ...args,
    ],
    { cwd: root, env: { ...process.env, XDG_RUNTIME_DIR: "/tmp" }, stdout: "ignore", stderr: "pipe" },
  );

test("two MPI ranks with batch 2 each train as one process with batch 4", async () => {
  const one = cli("train", "--run-dir", single, "--batch-size", "4", ...settings);
  expect(one.code, one.err).toBe(0);
  const p = mpirun(ranks, ...settings);
  const [exited, err] = [await p.exited, await new Response(p.stderr).text()];
  expect(exited, err).toBe(0);
  // Each rank names the adapter its local rank chose (modulo this machine's adapters).
  for (const rank of [0, 1])
    expect(err).toMatch(new RegExp(`rank ${rank}/2: adapter \\d+ ".+" \\(from the MPI local rank\\)`));
  // One metrics line per step, written once (rank 0), with the global batch's loss.
  const lines = (run: string) =>
    readFileSync(join(run, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
  expect(lines(ranks)).toHaveLength(2);
  lines(ranks).forEach((m, i) => expect(m.loss).toBeCloseTo(lines(single)[i].loss, 5));
  expect(
    lines(ranks).every((m) => m.allreduceSeconds > 0) && lines(single).every((m) => m.allreduceSeconds === undefined),
  ).toBe(true);
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

/** The pid of the MPI rank `rank` among this machine's processes (its launcher sets OMPI_COMM_WORLD_RANK). */
function rankPid(rank: number): number | null {
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const env = readFileSync(`/proc/${pid}/environ`, "utf8");
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (env.includes(`\0OMPI_COMM_WORLD_RANK=${rank}\0`) && cmd.includes("main.ts\0train")) return Number(pid);
    } catch {}
  }
  return null;
}

test("a rank killed mid-run ends the job with an error, the last checkpoint stays, and resuming under MPI ends where an uninterrupted run does", async () => {
  const run = join(base, "killed");
  const p = mpirun(run, ...settings, "--checkpoint-every", "1");
  // Once step 1's checkpoint is in, kill rank 1 during step 2.
  const latest = join(run, "checkpoints", "latest.json");
  for (let i = 0; i < 600 && !existsSync(latest); i++) await Bun.sleep(500);
  expect(existsSync(latest)).toBe(true);
  const pid = rankPid(1);
  expect(pid).not.toBeNull();
  process.kill(pid!, "SIGKILL");
  expect(await p.exited).not.toBe(0);
  // mpirun returns while it may still be reaping rank 0, whose lock on the run folder goes with it.
  const lock = join(run, "train.lock");
  const holder = existsSync(lock) ? (JSON.parse(readFileSync(lock, "utf8")).pid as number) : null;
  for (let i = 0; i < 120 && holder !== null && existsSync(`/proc/${holder}`); i++) await Bun.sleep(250);
  const folder = JSON.parse(readFileSync(latest, "utf8")).folder;
  expect(existsSync(join(run, "checkpoints", folder, "state.json"))).toBe(true);

  const resumed = mpirun(run, ...settings, "--resume");
  expect(await resumed.exited, await new Response(resumed.stderr).text()).toBe(0);
  const [a, b] = [await encoder(ranks), await encoder(run)];
  for (const [name, t] of a) expect(Array.from(b.get(name)!.data), name).toEqual(Array.from(t.data));
}, 900_000);
