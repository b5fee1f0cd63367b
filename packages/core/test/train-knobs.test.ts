/**
 * The fine-tuners' knobs on a tiny model: the learning-rate schedule per step, global-norm clipping, the EMA of
 * the weights, how many checkpoints are kept, and resuming (from a chosen checkpoint, with the EMA) exactly.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as T from "../src/index.ts";
import { readSafetensors } from "../src/io/safetensors.ts";
import { EMA } from "../src/training/ema.ts";
import { clipFactor, globalGradNorm } from "../src/training/grad-clip.ts";
import { lrFactor } from "../src/training/lr-schedule.ts";
import { tinyTrainingModels } from "./tiny-sd.ts";

beforeAll(async () => {
  await T.initRuntime();
});

const models = tinyTrainingModels;

const config = (over: Partial<T.TrainConfig> = {}): T.TrainConfig => ({
  ...T.TRAIN_DEFAULTS,
  steps: 2,
  batchSize: 1,
  inferenceSteps: 3,
  gradSteps: 1,
  resolution: 16,
  lr: 3e-3,
  weightDecay: 0,
  checkpointEvery: 1,
  sampleEvery: 100,
  seed: 5,
  ...over,
});
const prompts = ["a red apple", "a blue car"];
const run = (prefix: string) => mkdtempSync(join(tmpdir(), `tc-knobs-${prefix}-`));
const weights = async (m: T.Module) =>
  new Map([...(await m.stateDict())].map(([n, t]) => [n, Float64Array.from(t.data)]));
const metrics = (dir: string) =>
  readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as T.StepMetrics);
const checkpointWeights = (dir: string, step: number) =>
  readSafetensors(
    new Uint8Array(
      readFileSync(join(dir, "checkpoints", `step-${String(step).padStart(6, "0")}`, "trainable.safetensors")),
    ),
  ).tensors;

describe("learning-rate schedules (diffusers' get_scheduler)", () => {
  test("values per step", () => {
    const at = (s: T.LRScheduler, warmup: number) => [0, 1, 2, 3, 4, 5, 6].map((step) => lrFactor(s, step, warmup, 6));
    expect(at("constant", 0)).toEqual([1, 1, 1, 1, 1, 1, 1]);
    expect(at("constant_with_warmup", 2)).toEqual([0, 0.5, 1, 1, 1, 1, 1]);
    expect(at("linear", 2)).toEqual([0, 0.5, 1, 0.75, 0.5, 0.25, 0]);
    const cosine = at("cosine", 2);
    expect(cosine.slice(0, 3)).toEqual([0, 0.5, 1]);
    [Math.cos(Math.PI / 8) ** 2, 0.5, Math.sin(Math.PI / 8) ** 2, 0].forEach((v, i) =>
      expect(cosine[i + 3]).toBeCloseTo(v, 12),
    );
    expect(lrFactor("linear", 0, 0, 4)).toBe(1);
  });

  test("the trainer uses the scheduled rate at each step and reports it", async () => {
    const dir = run("lr");
    await T.train({
      models: await models(),
      config: config({ steps: 3, lr: 1e-3, lrScheduler: "linear", lrWarmupSteps: 1, checkpointsTotalLimit: null }),
      prompts,
      runDir: dir,
    });
    expect(metrics(dir).map((m) => m.lr)).toEqual([0, 1e-3, 1e-3 * 0.5]);
    // lr 0 with no weight decay: the first update leaves the weights as they were.
    const start = await weights((await models()).sd.textEncoder);
    for (const [n, t] of checkpointWeights(dir, 1))
      expect(Array.from(t.data), n).toEqual(Array.from(start.get(n)!, Math.fround));
  });

  test("settings are checked", () => {
    const check = (c: Partial<T.TrainConfig>) => () => T.validateTrainConfig({ ...T.TRAIN_DEFAULTS, ...c });
    expect(check({ lrScheduler: "exponential" as T.LRScheduler })).toThrow(
      "lrScheduler must be one of constant, constant_with_warmup, linear, cosine (got exponential)",
    );
    expect(check({ lrWarmupSteps: 10 })).toThrow("lrWarmupSteps 10 has no effect with the constant schedule");
    expect(check({ maxGradNorm: 0 })).toThrow("maxGradNorm must be > 0 (got 0)");
    expect(check({ emaDecay: 1 })).toThrow("emaDecay must be in [0, 1)");
    expect(check({ checkpointsTotalLimit: 0 })).toThrow("checkpointsTotalLimit must be a positive integer (got 0)");
  });
});

describe("global-norm clipping", () => {
  test("the norm is √Σg² over every gradient; the factor bounds it as torch does", async () => {
    const a = [3, -1, 2, 0.5],
      b = [
        [1, 2],
        [-2, 4],
      ];
    const grads = [T.Tensor.from(a), T.Tensor.from(b.flat(), [2, 2])];
    const expected = Math.sqrt([...a, ...b.flat()].reduce((s, x) => s + x * x, 0));
    expect(await globalGradNorm(grads)).toBeCloseTo(expected, 5);
    expect(clipFactor(expected, 1) * expected).toBeLessThanOrEqual(1);
    expect(clipFactor(expected, 100)).toBe(1);
    for (const g of grads) g.dispose();
  });

  test("the applied gradient's norm is at most max-grad-norm; the pre-clip norm goes to metrics", async () => {
    // With eps far above |g|, AdamW's first step is θ − lr·g/eps: the step's size shows the gradient applied
    // (lr = eps keeps the step above f32's resolution of the weights).
    const sgdLike = { steps: 1, lr: 1e6, eps: 1e6 } as const;
    const applied = async (maxGradNorm: number | null) => {
      const m = await models(),
        dir = run("clip");
      const start = await weights(m.sd.textEncoder);
      await T.train({ models: m, config: config({ ...sgdLike, maxGradNorm }), prompts, runDir: dir });
      const end = await weights(m.sd.textEncoder);
      let sq = 0;
      for (const [n, t] of end)
        t.forEach((x, i) => {
          sq += (x - start.get(n)![i]!) ** 2;
        });
      return { norm: (Math.sqrt(sq) * sgdLike.eps) / sgdLike.lr, reported: metrics(dir)[0]!.gradNorm };
    };
    const free = await applied(null);
    expect(free.norm / free.reported).toBeCloseTo(1, 2);
    const bound = free.reported / 4;
    const clipped = await applied(bound);
    expect(clipped.reported).toBeCloseTo(free.reported, 5);
    expect(clipped.norm / bound).toBeCloseTo(1, 2);
  });
});

describe("EMA of the trained weights", () => {
  test("the EMA class follows shadow ← d·shadow + (1−d)·θ", async () => {
    const p = T.keep(T.Tensor.from([1, 2, 3]));
    const ema = new EMA([p], 0.9);
    const values = [
      [2, 2, 2],
      [0, 4, -1],
    ];
    let expected = [1, 2, 3];
    for (const v of values) {
      T.runtime().runner.flush();
      T.runtime().runner.device.queue.writeBuffer(p.buffer, 0, new Float32Array(v));
      ema.update();
      expected = expected.map((e, i) => 0.9 * e + 0.1 * v[i]!);
    }
    // Samples see the average, then the trained weights come back.
    await ema.withAveraged(async () =>
      Array.from(await p.toArray()).forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 6)),
    );
    expect(Array.from(await p.toArray())).toEqual([0, 4, -1]);
    ema.dispose();
    p.dispose();
  });

  test("a run with --ema-decay ends on the average of θ0, θ1, θ2 and keeps it in checkpoints; resume is exact", async () => {
    const plain = run("ema-plain");
    const m0 = await models();
    const theta0 = await weights(m0.sd.textEncoder);
    await T.train({ models: m0, config: config({ checkpointsTotalLimit: null }), prompts, runDir: plain });
    const [theta1, theta2] = [checkpointWeights(plain, 1), checkpointWeights(plain, 2)];

    const d = 0.6;
    // Sampling every step checks that samples from the average leave the trained weights in place.
    const c = config({ emaDecay: d, sampleEvery: 1 });
    const straight = await models();
    const straightDir = run("ema");
    await T.train({ models: straight, config: c, prompts, evalPrompts: ["a cat"], runDir: straightDir });
    const averaged = await weights(straight.sd.textEncoder);
    for (const [n, t0] of theta0) {
      const t1 = theta1.get(n)!.data,
        t2 = theta2.get(n)!.data;
      const formula = t0.map((x, i) => d * d * x + d * (1 - d) * t1[i]! + (1 - d) * t2[i]!);
      averaged.get(n)!.forEach((x, i) => expect(Math.abs(x - formula[i]!), n).toBeLessThan(1e-6));
    }
    expect(existsSync(join(straightDir, "checkpoints/step-000002/ema.safetensors"))).toBe(true);

    const splitDir = run("ema-split");
    await T.train({
      models: await models(),
      config: { ...c, steps: 1 },
      prompts,
      evalPrompts: ["a cat"],
      runDir: splitDir,
    });
    const resumed = await models();
    await T.train({ models: resumed, config: c, prompts, evalPrompts: ["a cat"], runDir: splitDir, resume: true });
    expect(await weights(resumed.sd.textEncoder)).toEqual(averaged);
  });
});

describe("checkpoints", () => {
  test("--checkpoints-total-limit keeps the newest; --resume-from continues from a chosen one exactly", async () => {
    const dir = run("limit");
    const straight = await models();
    await T.train({ models: straight, config: config({ steps: 3, checkpointsTotalLimit: 3 }), prompts, runDir: dir });
    expect(
      readdirSync(join(dir, "checkpoints"))
        .filter((f) => f.startsWith("step-"))
        .sort(),
    ).toEqual(["step-000001", "step-000002", "step-000003"]);
    const resumed = await models();
    await T.train({
      models: resumed,
      config: config({ steps: 3, checkpointsTotalLimit: 1 }),
      prompts,
      runDir: dir,
      resumeFrom: join(dir, "checkpoints/step-000001"),
    });
    expect(await weights(resumed.sd.textEncoder)).toEqual(await weights(straight.sd.textEncoder));
    expect(readdirSync(join(dir, "checkpoints")).filter((f) => f.startsWith("step-"))).toEqual(["step-000003"]);
    await expect(
      T.train({ models: await models(), config: config(), prompts, runDir: dir, resumeFrom: join(dir, "nowhere") }),
    ).rejects.toThrow("is not a checkpoint folder (no state.json)");
  });
});
