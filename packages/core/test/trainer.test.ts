import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as T from "../src/index.ts";
import { rewardGraph } from "../src/internal.ts";
import { tinyTrainingModels } from "./tiny-sd.ts";

beforeAll(async () => {
  await T.initRuntime();
});

const models = tinyTrainingModels;

const config = (over: Partial<T.TrainConfig> = {}): T.TrainConfig => ({
  ...T.TRAIN_DEFAULTS,
  steps: 4,
  batchSize: 2,
  inferenceSteps: 4,
  gradSteps: 2,
  resolution: 16,
  lr: 3e-3,
  weightDecay: 0,
  checkpointEvery: 2,
  sampleEvery: 100,
  seed: 5,
  ...over,
});
const prompts = ["a red apple", "a blue car", "a green tree", "a yellow sun"];

async function meanReward(m: Awaited<ReturnType<typeof models>>, c: T.TrainConfig) {
  const sampler = T.ddimFor(m.sd, c.inferenceSteps, c.spacing);
  return T.scopeAsync(async () => T.noGrad(() => rewardGraph(m, sampler, c, prompts.slice(0, 2), 0).total).item());
}

const snapshot = async (mod: T.Module) => [...(await mod.stateDict()).values()].map((t) => Array.from(t.data));

describe("TextCraftor trainer on a tiny model", () => {
  test("training raises the reward; the frozen parts stay bit-identical", async () => {
    const m = await models();
    const c = config({ steps: 6 });
    const before = await meanReward(m, c);
    const unetBefore = await snapshot(m.sd.unet),
      vaeBefore = await snapshot(m.sd.vae),
      frozenBefore = await snapshot(m.frozenTextEncoder);
    const encoderBefore = await snapshot(m.sd.textEncoder);
    const run = mkdtempSync(join(tmpdir(), "tc-train-"));
    const steps: T.StepMetrics[] = [];
    const result = await T.train({ models: m, config: c, prompts, runDir: run, onStep: (s) => steps.push(s) });
    expect(result.steps).toBe(6);
    expect(steps.every((s) => Number.isFinite(s.loss) && !s.skipped)).toBe(true);
    expect(await meanReward(m, c)).toBeGreaterThan(before);
    expect(await snapshot(m.sd.unet)).toEqual(unetBefore);
    expect(await snapshot(m.sd.vae)).toEqual(vaeBefore);
    expect(await snapshot(m.frozenTextEncoder)).toEqual(frozenBefore);
    expect(await snapshot(m.sd.textEncoder)).not.toEqual(encoderBefore);
    expect(readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n")).toHaveLength(6);
    expect(existsSync(join(run, "checkpoints/latest.json"))).toBe(true);
  });

  test("a stopped run resumed from its checkpoint ends with the same weights as an uninterrupted one", async () => {
    const straight = await models();
    await T.train({ models: straight, config: config(), prompts, runDir: mkdtempSync(join(tmpdir(), "tc-a-")) });

    const split = await models();
    const dir = mkdtempSync(join(tmpdir(), "tc-b-"));
    await T.train({ models: split, config: config({ steps: 2 }), prompts, runDir: dir });
    const resumed = await models(); // fresh process state: weights come only from the checkpoint
    await T.train({ models: resumed, config: config(), prompts, runDir: dir, resume: true });
    expect(await snapshot(resumed.sd.textEncoder)).toEqual(await snapshot(straight.sd.textEncoder));
  });

  test("a resume with other settings is refused, naming them; a longer run is allowed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tc-c-"));
    await T.train({
      models: await models(),
      config: config({ steps: 2 }),
      prompts,
      runDir: dir,
      inputs: { model: "tiny" },
    });
    const again = await models();
    // A fresh run refused for its settings leaves the previous run's record as it was.
    await expect(
      T.train({ models: again, config: config({ lr: 0 }), prompts, runDir: dir, inputs: { model: "other" } }),
    ).rejects.toThrow("lr must be > 0");
    expect(JSON.parse(readFileSync(join(dir, "run.json"), "utf8"))).toEqual({ model: "tiny" });
    await expect(
      T.train({
        models: again,
        config: config({ steps: 3, lr: 1e-3, guidanceScale: 5 }),
        prompts,
        runDir: dir,
        resume: true,
      }),
    ).rejects.toThrow(
      `--resume: the run in ${dir} was made with guidanceScale 7.5 (now 5), lr 0.003 (now 0.001); resume with the run's settings`,
    );
    await T.train({ models: again, config: config({ steps: 3 }), prompts, runDir: dir, resume: true });
    expect(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).steps).toBe(3);
    expect(readFileSync(join(dir, "metrics.jsonl"), "utf8").trim().split("\n")).toHaveLength(3);
  });

  test("a non-finite reward skips updates and stops the run, naming the last good checkpoint", async () => {
    const m = await models();
    const nan: T.LoadedReward = { score: (images) => T.log(T.mean(images.reshape([images.shape[0]!, -1]), 1).mul(-1)) };
    m.rewards = [{ name: "broken", weight: 1, reward: nan }];
    const encoderBefore = await snapshot(m.sd.textEncoder);
    const run = T.train({
      models: m,
      config: config({ maxBadSteps: 1 }),
      prompts,
      runDir: mkdtempSync(join(tmpdir(), "tc-nan-")),
    });
    await expect(run).rejects.toThrow(/non-finite.*last good checkpoint/);
    expect(await snapshot(m.sd.textEncoder)).toEqual(encoderBefore);
  });

  test("embedding interpolation: w = 0 is the original pipeline, w = 1 the tuned one", async () => {
    const m = await models();
    await T.train({ models: m, config: config({ steps: 2 }), prompts, runDir: mkdtempSync(join(tmpdir(), "tc-i-")) });
    const p = ["a cat"];
    const gen = async (embeddingsAt?: (i: number, n: number) => T.Tensor, encoder = m.sd.textEncoder) => {
      const sd = { ...m.sd, textEncoder: encoder };
      const out = T.textToImage(sd, { prompts: p, seed: 9, steps: 3, height: 16, width: 16, embeddingsAt });
      const data = await out.toArray();
      out.dispose();
      return Array.from(data);
    };
    const original = T.keep(T.noGrad(() => T.encodePrompts(m.sd, m.frozenTextEncoder, p)));
    const tuned = T.keep(T.noGrad(() => T.encodePrompts(m.sd, m.sd.textEncoder, p)));
    const at = (w: number) => {
      const e = T.keep(T.interpolateEmbeddings(original, tuned, w));
      return () => e.reshape(e.shape);
    };
    expect(await gen(at(0))).toEqual(await gen(undefined, m.frozenTextEncoder));
    expect(await gen(at(1))).toEqual(await gen(undefined, m.sd.textEncoder));
    expect(await gen(at(0.5))).not.toEqual(await gen(at(1)));
  });
});

describe("LoRA", () => {
  test("trains only the adapters, raises the reward, and merges into a plain encoder with the same outputs", async () => {
    const m = await models();
    const c = config({ steps: 3, lora: { rank: 2, alpha: 4 }, lr: 1e-2 });
    const before = await meanReward(m, c);
    const baseBefore = await snapshot(m.sd.textEncoder);
    await T.train({ models: m, config: c, prompts, runDir: mkdtempSync(join(tmpdir(), "tc-lora-")) });
    const names = [...m.sd.textEncoder.namedParameters()].map(([n]) => n);
    expect(names.some((n) => n.endsWith("q_proj.lora_A.weight"))).toBe(true);
    const withAdapters = new Map(await m.sd.textEncoder.stateDict());
    // Base weights untouched; the adapters moved.
    for (const [n, t] of withAdapters)
      if (!n.includes("lora_"))
        expect(Array.from(t.data), n).toEqual(Array.from((await m.frozenTextEncoder.stateDict()).get(n)!.data));
    expect(baseBefore.length).toBeLessThan(withAdapters.size);
    const after = await meanReward(m, c);
    expect(after).toBeGreaterThan(before);
    T.mergeLoRA(m.sd.textEncoder);
    expect([...m.sd.textEncoder.namedParameters()].some(([n]) => n.includes("lora_"))).toBe(false);
    expect(Math.abs((await meanReward(m, c)) - after)).toBeLessThan(1e-5);
  });
});
