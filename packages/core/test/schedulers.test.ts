import { describe, expect, test } from "bun:test";
import {
  DDIMScheduler,
  DDPMScheduler,
  EulerDiscreteScheduler,
  SD15_SCHEDULER_CONFIG as SD15,
  alphasCumprod,
  betas,
  schedulerFromConfig,
} from "../src/schedulers/index.ts";

/** SD 1.5's scheduler_config.json as published (no timestep_spacing key in the original file). */
const SD15_JSON = {
  _class_name: "PNDMScheduler",
  beta_end: 0.012,
  beta_schedule: "scaled_linear",
  beta_start: 0.00085,
  clip_sample: false,
  num_train_timesteps: 1000,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  trained_betas: null,
};

/** ᾱ_t written out here, independently of betas.ts: scaled_linear betas, running product. */
function handAlphaBar(t: number): number {
  const lo = Math.sqrt(0.00085);
  const hi = Math.sqrt(0.012);
  let product = 1;
  for (let s = 0; s <= t; s++) product *= 1 - (lo + ((hi - lo) * s) / 999) ** 2;
  return product;
}

const countdown = (first: number, step: number, count: number) =>
  Array.from({ length: count }, (_, i) => first - step * i);
const relative = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

describe("betas and ᾱ (SD 1.5: scaled_linear 0.00085 → 0.012, 1000 steps)", () => {
  const b = betas(SD15);
  const ab = alphasCumprod(b);
  test("end points", () => {
    expect(b.length).toBe(1000);
    expect(b[0]).toBeCloseTo(0.00085, 15);
    expect(b[999]).toBeCloseTo(0.012, 15);
    expect(ab).toBeInstanceOf(Float64Array);
    expect(relative(ab[0], 0.99915)).toBeLessThan(5e-6);
    expect(relative(ab[999], 0.0046601)).toBeLessThan(5e-6);
    expect(relative(ab[500], handAlphaBar(500))).toBeLessThan(1e-12);
  });
  test("linear schedule", () => {
    const linear = betas({ ...SD15, betaSchedule: "linear", betaStart: 0.0001, betaEnd: 0.02 });
    expect(linear[0]).toBeCloseTo(0.0001, 15);
    expect(linear[999]).toBeCloseTo(0.02, 15);
    expect(linear[333]).toBeCloseTo(0.0001 + (0.0199 * 333) / 999, 15);
  });
  test("trained betas replace the schedule", () => {
    expect(Array.from(betas({ ...SD15, trainedBetas: [0.1, 0.2] }))).toEqual([0.1, 0.2]);
  });
});

describe("DDIM timesteps", () => {
  const ddim = new DDIMScheduler(SD15);
  test("SD 1.5 leading with steps_offset 1", () => {
    expect(ddim.setTimesteps(25)).toEqual(countdown(961, 40, 25));
    expect(ddim.setTimesteps(50)).toEqual(countdown(981, 20, 50));
  });
  test("TextCraftor: 999, 959, …, 39", () => {
    expect(ddim.setTimesteps(25, { spacing: "textcraftor" })).toEqual(countdown(999, 40, 25));
  });
  test("trailing equals TextCraftor's when N divides 1000, and differs otherwise", () => {
    expect(ddim.setTimesteps(25, { spacing: "trailing" })).toEqual(countdown(999, 40, 25));
    const trailing30 = ddim.setTimesteps(30, { spacing: "trailing" });
    const textcraftor30 = ddim.setTimesteps(30, { spacing: "textcraftor" });
    expect(trailing30.slice(0, 4)).toEqual([999, 966, 932, 899]);
    expect(trailing30.at(-1)).toBe(32);
    expect(textcraftor30).toEqual(countdown(999, 33, 30));
  });
  test("trailing keeps numpy's extra step for N = 61, as diffusers does", () => {
    expect(ddim.setTimesteps(61, { spacing: "trailing" }).length).toBe(62);
  });
  test("linspace rounds half to even", () => {
    const t = ddim.setTimesteps(25, { spacing: "linspace" });
    expect(t.slice(0, 4)).toEqual([999, 957, 916, 874]);
    expect(t.slice(-3)).toEqual([83, 42, 0]);
  });
  test("refuses impossible step counts", () => {
    expect(() => ddim.setTimesteps(0)).toThrow();
    expect(() => ddim.setTimesteps(1001)).toThrow();
  });
});

describe("DDIM step (eta = 0)", () => {
  const x = 0.7;
  const eps = -0.3;
  /** The DDIM update written out from the formulas. */
  const handStep = (t: number, prev: number, finalAlpha: number) => {
    const a = handAlphaBar(t);
    const ap = prev >= 0 ? handAlphaBar(prev) : finalAlpha;
    const x0 = (x - Math.sqrt(1 - a) * eps) / Math.sqrt(a);
    return Math.sqrt(ap) * x0 + Math.sqrt(1 - ap) * eps;
  };

  test("t = 961 → 921 matches the hand computation and numpy's coefficients", () => {
    const ddim = new DDIMScheduler(SD15);
    ddim.setTimesteps(25);
    const { cx, ce } = ddim.stepCoefficients(961);
    expect(cx * x + ce * eps).toBeCloseTo(handStep(961, 921, NaN), 12);
    expect(cx).toBeCloseTo(1.2478125006649792, 12);
    expect(ce).toBeCloseTo(-0.2489462009648291, 12);
    expect(ddim.stepCoefficientsAt(0)).toEqual({ cx, ce });
    expect(ddim.modelInputScale()).toBe(1);
    expect(ddim.initNoiseSigma).toBe(1);
  });

  test("the last step uses ᾱ[0] (set_alpha_to_one false) or 1 (true)", () => {
    const ddim = new DDIMScheduler(SD15);
    ddim.setTimesteps(25, { spacing: "textcraftor" });
    expect(ddim.finalAlphaCumprod).toBe(ddim.alphasCumprod[0]);
    expect(ddim.coefficients(39).sqrtAlphaPrev).toBeCloseTo(Math.sqrt(0.99915), 6);
    const { cx, ce } = ddim.stepCoefficients(39);
    expect(cx * x + ce * eps).toBeCloseTo(handStep(39, -1, handAlphaBar(0)), 12);

    const toOne = new DDIMScheduler({ ...SD15, setAlphaToOne: true });
    toOne.setTimesteps(25, { spacing: "textcraftor" });
    const last = toOne.stepCoefficients(39);
    const x0 = toOne.predictX0Coefficients(39);
    expect(last.cx).toBeCloseTo(x0.cx, 12);
    expect(last.ce).toBeCloseTo(x0.ce, 12);
  });

  test("predictX0Coefficients undoes the forward process", () => {
    const ddim = new DDIMScheduler(SD15);
    ddim.setTimesteps(25);
    const a = handAlphaBar(481);
    const x0 = 0.25;
    const xt = Math.sqrt(a) * x0 + Math.sqrt(1 - a) * eps;
    const { cx, ce } = ddim.predictX0Coefficients(481);
    expect(cx * xt + ce * eps).toBeCloseTo(x0, 12);
  });
});

describe("Euler discrete", () => {
  test("SD 1.5 config (leading, offset 1), 25 steps: σ at t = 961 first, then decreasing to 0", () => {
    const euler = new EulerDiscreteScheduler(SD15);
    expect(euler.setTimesteps(25)).toEqual(countdown(961, 40, 25));
    const sigmas = Array.from(euler.sigmas);
    expect(sigmas.length).toBe(26);
    for (let i = 1; i < sigmas.length; i++) expect(sigmas[i]).toBeLessThan(sigmas[i - 1]);
    expect(sigmas[25]).toBe(0);
    // numpy, diffusers' formula: sqrt((1 − ᾱ)/ᾱ) at t = 961 is 11.67605; init sigma sqrt(σ²+1) for "leading".
    expect(sigmas[0]).toBeCloseTo(11.676046, 5);
    expect(sigmas[0]).toBeCloseTo(Math.sqrt((1 - handAlphaBar(961)) / handAlphaBar(961)), 12);
    expect(euler.initNoiseSigma).toBeCloseTo(11.718795, 5);
    expect(euler.modelInputScale(0)).toBeCloseTo(1 / Math.sqrt(sigmas[0] ** 2 + 1), 15);
    expect(euler.stepCoefficientsAt(0)).toEqual({ cx: 1, ce: sigmas[1] - sigmas[0] });
    expect(euler.stepCoefficientsAt(24)).toEqual({ cx: 1, ce: -sigmas[24] });
  });

  test("linspace, 25 steps: starts at σ_max = 14.6146 and interpolates fractional timesteps", () => {
    const euler = new EulerDiscreteScheduler({ ...SD15, timestepSpacing: "linspace" });
    const timesteps = euler.setTimesteps(25);
    expect(timesteps.slice(0, 3)).toEqual([999, 957.375, 915.75]);
    expect(euler.sigmas[0]).toBeCloseTo(14.614641, 5);
    expect(euler.initNoiseSigma).toBe(euler.sigmas[0]);
    const sigma = (t: number) => Math.sqrt((1 - handAlphaBar(t)) / handAlphaBar(t));
    expect(euler.sigmas[1]).toBeCloseTo(0.625 * sigma(957) + 0.375 * sigma(958), 12);
  });
});

describe("DDPM", () => {
  const ddpm = new DDPMScheduler(SD15);
  test("add-noise coefficients: squares sum to 1", () => {
    for (const t of [0, 1, 250, 500, 961, 999]) {
      const { sqrtAlphaProd, sqrtOneMinusAlphaProd } = ddpm.addNoiseCoefficients(t);
      expect(sqrtAlphaProd ** 2 + sqrtOneMinusAlphaProd ** 2).toBeCloseTo(1, 14);
      expect(sqrtAlphaProd).toBeCloseTo(Math.sqrt(handAlphaBar(t)), 12);
    }
  });

  test("posterior step at t = 500 matches q(x_{t−1} | x_t, x̂_0)", () => {
    const x = 0.7;
    const eps = -0.3;
    const a = handAlphaBar(500);
    const ap = handAlphaBar(499);
    const beta = 1 - a / ap;
    const x0 = (x - Math.sqrt(1 - a) * eps) / Math.sqrt(a);
    const mean = (Math.sqrt(ap) * beta * x0 + Math.sqrt(1 - beta) * (1 - ap) * x) / (1 - a);
    const { cx, ce, sigma } = ddpm.posteriorCoefficients(500);
    expect(cx * x + ce * eps).toBeCloseTo(mean, 12);
    expect(sigma).toBeCloseTo(Math.sqrt(((1 - ap) / (1 - a)) * beta), 12);
  });

  test("the last step returns x̂_0 without noise", () => {
    const { cx, ce, sigma } = ddpm.posteriorCoefficients(0);
    const a = handAlphaBar(0);
    expect(cx).toBeCloseTo(1 / Math.sqrt(a), 12);
    expect(ce).toBeCloseTo(-Math.sqrt(1 - a) / Math.sqrt(a), 12);
    expect(sigma).toBe(0);
  });
});

describe("schedulerFromConfig", () => {
  test("SD 1.5's PNDM config samples with DDIM (leading, offset 1, ᾱ[0] at the end)", () => {
    const scheduler = schedulerFromConfig(SD15_JSON);
    expect(scheduler).toBeInstanceOf(DDIMScheduler);
    expect(scheduler.setTimesteps(25)).toEqual(countdown(961, 40, 25));
    expect((scheduler as DDIMScheduler).finalAlphaCumprod).toBeCloseTo(0.99915, 12);
  });

  test("as Euler, a config without timestep_spacing takes Euler's default, linspace", () => {
    const euler = schedulerFromConfig(SD15_JSON, "EulerDiscreteScheduler") as EulerDiscreteScheduler;
    euler.setTimesteps(25);
    expect(euler.sigmas[0]).toBeCloseTo(14.614641, 5);
    const leading = schedulerFromConfig(
      { ...SD15_JSON, timestep_spacing: "leading" },
      "EulerDiscreteScheduler",
    ) as EulerDiscreteScheduler;
    leading.setTimesteps(25);
    expect(leading.sigmas[0]).toBeCloseTo(11.676046, 5);
  });

  test("refuses what the affine kernels cannot apply", () => {
    expect(() => schedulerFromConfig({ ...SD15_JSON, clip_sample: true })).toThrow(/clip_sample/);
    expect(() => schedulerFromConfig({ ...SD15_JSON, prediction_type: "v_prediction" })).toThrow(/prediction_type/);
    expect(() => schedulerFromConfig({ ...SD15_JSON, _class_name: "LMSDiscreteScheduler" })).toThrow(/not supported/);
    expect(() => schedulerFromConfig({ ...SD15_JSON, beta_schedule: "squaredcos_cap_v2" })).toThrow(/beta_schedule/);
  });
});
