/** The fine-tuners' knobs through `train`'s flags: recorded in config.json, reported in metrics, resumable from a chosen checkpoint. */
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initRuntime, readSafetensorsHeader, readWeights, saveDiffusersFolder } from "@textcraftor/core";
import { splitSingleFile } from "@textcraftor/core/internal";
import { tinyStableDiffusion } from "../../core/test/tiny-sd.ts";
import { cli } from "./cli.ts";

const work = mkdtempSync(join(tmpdir(), "tc-cli-knobs-"));
const model = join(work, "tiny-sd");
const prompts = join(work, "prompts.txt");

beforeAll(async () => {
  await initRuntime();
  const sd = await tinyStableDiffusion(4);
  await saveDiffusersFolder(sd, model);
  sd.dispose();
  writeFileSync(prompts, "a red apple\na blue car\n");
});

const common = [
  "--model",
  model,
  "--reward",
  "brightness",
  "--prompts",
  prompts,
  "--batch-size",
  "1",
  "--inference-steps",
  "2",
  "--grad-steps",
  "1",
  "--resolution",
  "16",
  "--sample-every",
  "10",
  "--checkpoint-every",
  "1",
];

describe("train's optimizer and checkpoint knobs", () => {
  test("schedule, clipping, EMA, Adam settings and checkpoint limit reach the run; --resume-from continues a chosen checkpoint", () => {
    const run = join(work, "run");
    const t = cli(
      "train",
      ...common,
      "--steps",
      "2",
      "--run-dir",
      run,
      "--lr",
      "1e-3",
      "--lr-scheduler",
      "linear",
      "--lr-warmup-steps",
      "1",
      "--max-grad-norm",
      "0.5",
      "--ema-decay",
      "0.9",
      "--adam-beta1",
      "0.8",
      "--adam-beta2",
      "0.99",
      "--adam-epsilon",
      "1e-6",
      "--adam-weight-decay",
      "0",
      "--checkpoints-total-limit",
      "0",
    );
    expect(t.code, t.err + t.out).toBe(0);
    // The end-of-run evaluation: the held-out prompts (here the first training prompts) at seeds 0 and 1, base and tuned.
    expect(t.out).toContain(
      "base vs tuned on the same 2 held-out prompt(s) × 2 seed(s) (4 pairs); ± is the paired standard error:",
    );
    expect(
      JSON.parse(readFileSync(join(run, "eval.json"), "utf8")).rows.map((r: { reward: string }) => r.reward),
    ).toEqual(["brightness"]);
    expect(readFileSync(join(run, "report.html"), "utf8")).toContain("<li>brightness × 1</li>");
    expect(readFileSync(join(run, "report.html"), "utf8")).toContain("from the largest gain to the largest loss");
    const config = JSON.parse(readFileSync(join(run, "config.json"), "utf8"));
    expect(config).toMatchObject({
      lrScheduler: "linear",
      lrWarmupSteps: 1,
      maxGradNorm: 0.5,
      emaDecay: 0.9,
      beta1: 0.8,
      beta2: 0.99,
      eps: 1e-6,
      weightDecay: 0,
      checkpointsTotalLimit: null,
    });
    const metrics = readFileSync(join(run, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(metrics.map((m) => m.lr)).toEqual([0, 1e-3]);
    expect(metrics.every((m) => m.gradNorm > 0)).toBe(true);
    expect(existsSync(join(run, "checkpoints/step-000001/ema.safetensors"))).toBe(true);

    const r = cli(
      "train",
      "--resume-from",
      join(run, "checkpoints/step-000001"),
      "--run-dir",
      run,
      "--eval-limit",
      "0",
    );
    expect(r.code, r.err + r.out).toBe(0);
    expect(
      readdirSync(join(run, "checkpoints"))
        .filter((f) => f.startsWith("step-"))
        .sort(),
    ).toEqual(["step-000001", "step-000002"]);
    const bad = cli("train", "--resume-from", join(run, "checkpoints/step-000009"), "--run-dir", run);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain("is not a checkpoint folder");
  });

  test("--config: the file's settings and inputs are used, flags win; LoRA, whole-model and single-file exports; a bad file lists every problem", async () => {
    const run = join(work, "run-config");
    const toml = join(work, "run.toml");
    writeFileSync(
      toml,
      [
        `model = "tiny-sd"`,
        `reward = ["brightness"]`,
        `prompts = "prompts.txt"`,
        `run_dir = "run-config"`,
        "steps = 3",
        "batch_size = 1",
        "inference_steps = 2",
        "grad_steps = 1",
        "resolution = 16",
        "sample_every = 10",
        'lr_scheduler = "cosine"',
        "lr = 2e-3",
        "lora_rank = 2",
        "export_single_file = true",
      ].join("\n"),
    );
    const t = cli("train", "--config", toml, "--steps", "1", "--lr", "1e-3", "--export-full", "--export-dtype", "f16");
    expect(t.code, t.err + t.out).toBe(0);
    expect(JSON.parse(readFileSync(join(run, "config.json"), "utf8"))).toMatchObject({
      steps: 1,
      lr: 1e-3,
      lrScheduler: "cosine",
      batchSize: 1,
      resolution: 16,
      lora: { rank: 2 },
    });
    const header = (file: string) => readSafetensorsHeader(new Uint8Array(readFileSync(file)));
    const lora = [...header(join(run, "lora.safetensors")).tensors.keys()];
    expect(lora).toContain("lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight");
    expect(
      lora.every((k) =>
        /^lora_te_text_model_encoder_layers_\d+_self_attn_(q|k|v|out)_proj\.(lora_down\.weight|lora_up\.weight|alpha)$/.test(
          k,
        ),
      ),
    ).toBe(true);
    const single = header(join(run, "model.safetensors"));
    expect([...single.tensors.values()].every((e) => e.dtype === "F16")).toBe(true);
    expect(splitSingleFile(single.tensors).textEncoder.has("text_model.encoder.layers.0.self_attn.q_proj.weight")).toBe(
      true,
    );
    // The tuned (merged) encoder is in the whole-model folder, in place of the base one.
    expect(readdirSync(join(run, "model"))).toEqual(
      expect.arrayContaining(["text_encoder", "unet", "vae", "model_index.json"]),
    );
    const exported = await readWeights(join(run, "model/text_encoder/model.safetensors"));
    const tuned = await readWeights(join(run, "text_encoder/model.safetensors"));
    expect(Array.from(exported.get("text_model.encoder.layers.0.self_attn.q_proj.weight")!.data)).toEqual(
      Array.from(tuned.get("text_model.encoder.layers.0.self_attn.q_proj.weight")!.data),
    );
    writeFileSync(toml, ["learning_rate = 1e-4", "steps = 0"].join("\n"));
    const bad = cli("train", "--config", toml);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain("2 problems:\n  learning_rate: not a train setting; did you mean lr?");
    expect(bad.err).toContain("steps = 0: Expected a value greater than 0");
  });
});
