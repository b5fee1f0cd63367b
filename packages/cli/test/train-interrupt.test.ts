/** Ctrl-C during `train`: the step finishes, a loadable checkpoint is written, the process exits 130 saying how to resume. */
import { beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { AdamW, initRuntime, saveDiffusersFolder } from "@textcraftor/core";
import { loadCheckpoint } from "@textcraftor/core/internal";
import { tinyStableDiffusion } from "../../core/test/tiny-sd.ts";

const work = mkdtempSync(join(tmpdir(), "tc-cli-int-"));
const model = join(work, "tiny-sd");

beforeAll(async () => {
  await initRuntime();
  const sd = await tinyStableDiffusion(4);
  await saveDiffusersFolder(sd, model);
  sd.dispose();
  writeFileSync(join(work, "prompts.txt"), "a red apple\na blue car\n");
});

test("SIGINT mid-run: exit 130, a checkpoint of the last finished step that loads, and the resume command", async () => {
  const run = join(work, "run");
  const child = Bun.spawn(
    [
      "bun",
      "packages/cli/src/main.ts",
      "train",
      "--model",
      model,
      "--reward",
      "brightness",
      "--prompts",
      join(work, "prompts.txt"),
      "--steps",
      "200",
      "--batch-size",
      "1",
      "--inference-steps",
      "2",
      "--grad-steps",
      "1",
      "--resolution",
      "16",
      "--sample-every",
      "1000",
      "--checkpoint-every",
      "1000",
      "--run-dir",
      run,
    ],
    {
      cwd: resolve(import.meta.dir, "../../.."),
      env: { ...process.env, XDG_RUNTIME_DIR: "/tmp" },
      stderr: "pipe",
      stdout: "pipe",
    },
  );
  const metrics = join(run, "metrics.jsonl");
  while (!(existsSync(metrics) && readFileSync(metrics, "utf8").length > 0)) {
    if (child.exitCode !== null) throw new Error(`train exited early: ${await new Response(child.stderr).text()}`);
    await Bun.sleep(200);
  }
  child.kill("SIGINT");
  const code = await child.exited;
  const err = await new Response(child.stderr).text();
  expect(code, err).toBe(130);
  expect(err).toContain(`resume with: bun run cli train --run-dir ${run} --resume`);
  const steps = readFileSync(metrics, "utf8").trim().split("\n").length;
  expect(JSON.parse(readFileSync(join(run, "checkpoints/latest.json"), "utf8")).step).toBe(steps);
  const sd = await tinyStableDiffusion(9);
  const named = [...sd.textEncoder.namedParameters()];
  const counters = await loadCheckpoint(
    join(run, "checkpoints"),
    sd.textEncoder,
    named.map(([n]) => n),
    new AdamW(named.map(([, t]) => t)),
  );
  expect(counters?.step).toBe(steps);
});
