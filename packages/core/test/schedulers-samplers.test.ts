import { beforeAll, describe, expect, test } from "bun:test";
import * as T from "../src/index.ts";
import fixture from "./fixtures/schedulers/samplers.json";
import { tinyStableDiffusion } from "./tiny-sd.ts";

beforeAll(async () => {
  await T.initRuntime();
});

const SD15 = T.SD15_SCHEDULER_CONFIG;
const shape = fixture.shape;

/** The fixture script's stand-in for the UNet: ε = tanh(x_in·(0.5 + t/2000)). */
const standIn: T.NoisePredictor = { forward: (x, t) => T.tanh(x.mul(0.5 + (t as number) / 2000)) };

/** Runs the GPU loop from the reference's noise; guidance 1 hands `embeddings` straight to the stand-in. */
async function finalLatents(
  sampler: T.Sampler,
  run: { noise: number[]; stepNoise?: number[][] },
): Promise<Float32Array> {
  const embeddings = T.Tensor.zeros([1, 1, 1]);
  const latents = T.Tensor.from(run.noise, shape).mul(sampler.initNoiseSigma);
  const x = T.sampleLatents(standIn, sampler, {
    shape,
    seed: 0,
    guidanceScale: 1,
    embeddingsAt: () => embeddings,
    latents,
    stepNoise: run.stepNoise ? (i, s) => T.Tensor.from(run.stepNoise![i]!, s) : undefined,
  });
  const out = await x.toArray();
  for (const t of [x, latents, embeddings]) t.dispose();
  return out as Float32Array;
}

function expectClose(actual: ArrayLike<number>, expected: readonly number[], tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  const worst = Math.max(...expected.map((e, i) => Math.abs(actual[i]! - e) / Math.max(1, Math.abs(e))));
  expect(worst).toBeLessThan(tolerance);
}

describe("DPM-Solver++(2M) Karras against the reference from the published update rule", () => {
  for (const run of fixture.dpmpp2mKarras) {
    test(`${run.steps} steps: timesteps, Karras sigmas and the final latents`, async () => {
      const sampler = T.createSampler("dpmpp-2m-karras", SD15, { steps: run.steps });
      expect(sampler.timesteps).toEqual(run.timesteps);
      expectClose(sampler.sigmas, run.sigmas, 1e-12);
      expect(sampler.initNoiseSigma).toBe(sampler.sigmas[0]!);
      expectClose(await finalLatents(sampler, run), run.final, 2e-5);
    });
  }

  test("the run keeps one data prediction between steps and frees it; steps must come in order", async () => {
    const sampler = T.createSampler("dpmpp-2m-karras", SD15, { steps: 4 });
    const x = T.Tensor.from(fixture.dpmpp2mKarras[0]!.noise, shape);
    const eps = T.Tensor.full(shape, 0.1);
    const live = () => T.memoryStats().liveBytes;
    const before = live();
    const run = sampler.start();
    const next = T.scope(() => run.step(0, x, eps));
    expect(() => run.step(2, next, eps)).toThrow(/expected step 1, got 2/);
    const afterStep = live() - before;
    expect(afterStep).toBeGreaterThan(0);
    run.dispose();
    // Besides the step's result, the one thing left was the run's D for step 1, of the latents' size.
    expect(afterStep - (live() - before)).toBe(afterStep / 2);
    next.dispose();
    expect(live()).toBe(before);
    for (const t of [x, eps]) t.dispose();
  });
});

describe("Euler ancestral against the reference from the published update rule", () => {
  const run = fixture.eulerAncestral[0]!;
  const linspace = { ...SD15, timestepSpacing: "linspace" as const };

  test(`${run.steps} steps with the reference's noise: timesteps, sigmas and the final latents`, async () => {
    const sampler = T.createSampler("euler-ancestral", linspace, { steps: run.steps });
    expectClose(sampler.timesteps, run.timesteps, 1e-12);
    expectClose(sampler.sigmas, run.sigmas, 1e-12);
    expectClose(await finalLatents(sampler, run), run.final, 2e-5);
  });

  test("its own noise is seeded: the same seed repeats, another differs", async () => {
    const sampler = T.createSampler("euler-ancestral", linspace, { steps: 3 });
    const sample = async (seed: number) => {
      const x = T.sampleLatents(standIn, sampler, {
        shape,
        seed,
        guidanceScale: 1,
        embeddingsAt: () => T.Tensor.zeros([1]),
      });
      const out = Array.from(await x.toArray());
      x.dispose();
      return out;
    };
    const a = await sample(3);
    expect(await sample(3)).toEqual(a);
    expect(await sample(4)).not.toEqual(a);
  });
});

describe("sampler registry", () => {
  test("names every sampler, and each builds on the model's schedule", () => {
    expect(T.samplerNames).toEqual(["ddim", "euler", "euler-ancestral", "dpmpp-2m-karras"]);
    for (const name of T.samplerNames) expect(T.createSampler(name, SD15, { steps: 5 }).timesteps.length).toBe(5);
    const ddim = T.createSampler("ddim", SD15, { steps: 25, spacing: "textcraftor" });
    expect(ddim).toBeInstanceOf(T.DDIMScheduler);
    expect(ddim.timesteps.slice(0, 2)).toEqual([999, 959]);
  });

  test("refuses unknown names and spacings a sampler cannot take, saying what to do", () => {
    expect(() => T.createSampler("plms", SD15, { steps: 5 })).toThrow(
      /unknown sampler "plms": use one of ddim, euler, euler-ancestral, dpmpp-2m-karras/,
    );
    expect(() => T.createSampler("euler-ancestral", SD15, { steps: 5, spacing: "textcraftor" })).toThrow(
      /TextCraftor's DDIM schedule/,
    );
    expect(() => T.createSampler("dpmpp-2m-karras", SD15, { steps: 5, spacing: "trailing" })).toThrow(
      /Karras sigmas set the timesteps/,
    );
  });

  test("text-to-image samples with each of them and frees the solver's state", async () => {
    const sd = await tinyStableDiffusion();
    const before = T.memoryStats().liveBytes;
    for (const scheduler of T.samplerNames) {
      const images = T.textToImage(sd, {
        prompts: ["a red apple"],
        seed: 1,
        steps: 3,
        height: 16,
        width: 16,
        scheduler,
      });
      for (const v of await images.toArray()) expect(v >= 0 && v <= 1, scheduler).toBe(true);
      images.dispose();
      expect(T.memoryStats().liveBytes, scheduler).toBe(before);
    }
    sd.dispose();
  });
});
