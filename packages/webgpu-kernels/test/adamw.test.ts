import { describe, expect, test } from "bun:test";
import { adamw, adamwCpu, hasNonFinite, type AdamWOptions } from "../src/adamw.ts";
import { download, expectClose, getRunner, random, upload } from "./helpers.ts";
import type { KernelRunner } from "../src/runner.ts";

const HYPER = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

describe("adamw", () => {
  test("three steps match the f64 reference on awkward sizes", async () => {
    const r = await getRunner();
    for (const n of [1, 3, 77, 129, 4097]) {
      // Weight-sized parameters (CLIP's are ~0.02), so f32 rounding of p stays small against the updates.
      const param = random(n, n, 0.05),
        m = new Float32Array(n),
        v = new Float32Array(n);
      const bufs = [upload(r, param), upload(r, m), upload(r, v)] as const;
      let want: { param: ArrayLike<number>; m: ArrayLike<number>; v: ArrayLike<number> } = { param, m, v };
      for (let step = 1; step <= 3; step++) {
        const grad = random(n, 100 * n + step, 0.1);
        // The last step exercises gradScale, as when averaging accumulated gradients.
        const o: AdamWOptions = { ...HYPER, step, n, gradScale: step === 3 ? 0.25 : undefined };
        adamw(r, bufs[0], upload(r, grad), bufs[1], bufs[2], o);
        want = adamwCpu(want.param, grad, want.m, want.v, o);
      }
      const got = await download(r, bufs[0], n);
      expectClose(got, want.param, 1e-6, `param[${n}]`);
      // Three steps move p by ~3·lr: compare the updates themselves too.
      expectClose(
        got.map((p, i) => p - param[i]!),
        Array.from(want.param, (p, i) => p - param[i]!),
        1e-5,
        `update[${n}]`,
      );
      expectClose(await download(r, bufs[1], n), want.m, 1e-6, `m[${n}]`);
      expectClose(await download(r, bufs[2], n), want.v, 1e-6, `v[${n}]`);
    }
  });

  test("one step by hand", async () => {
    // Step 1 from m = v = 0: m̂ = g and v̂ = g², so the update is lr·g/(|g| + eps) after the decay p·(1 − lr·wd).
    const r = await getRunner();
    const param = upload(r, Float32Array.of(1, -2));
    adamw(
      r,
      param,
      upload(r, Float32Array.of(0.5, -1)),
      upload(r, new Float32Array(2)),
      upload(r, new Float32Array(2)),
      { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 1, n: 2 },
    );
    const want = [1 * 0.999 - (0.1 * 0.5) / (0.5 + 1e-8), -2 * 0.999 + 0.1 / (1 + 1e-8)];
    expectClose(await download(r, param, 2), want, 1e-7, "param");
  });

  test("step counts from 1", async () => {
    const r = await getRunner();
    const b = upload(r, new Float32Array(1));
    expect(() => adamw(r, b, b, b, b, { ...HYPER, step: 0, n: 1 })).toThrow("step counts updates from 1");
  });
});

describe("hasNonFinite", () => {
  const check = async (r: KernelRunner, x: Float32Array) => {
    const flag = upload(r, new Uint32Array(1));
    hasNonFinite(r, upload(r, x), flag, x.length);
    return new Uint32Array(await r.read(flag, 4))[0];
  };

  test("finds NaN, +Inf and −Inf anywhere, on awkward sizes", async () => {
    const r = await getRunner();
    for (const n of [1, 3, 77, 129, 4097]) {
      for (const bad of [NaN, Infinity, -Infinity]) {
        for (const at of new Set([0, n >> 1, n - 1])) {
          const x = random(n, n);
          x[at] = bad;
          expect(await check(r, x), `${bad} at ${at} of ${n}`).toBe(1);
        }
      }
    }
  });

  test("is 0 on finite data, including the largest and smallest floats", async () => {
    const r = await getRunner();
    for (const n of [1, 3, 77, 129, 4097]) expect(await check(r, random(n, n, 1e30))).toBe(0);
    expect(await check(r, Float32Array.of(3e38, -3e38, 3.4028234663852886e38, 1e-45, -0, 0))).toBe(0);
  });

  test("one flag collects the check over several tensors and is never cleared", async () => {
    const r = await getRunner();
    const flag = upload(r, new Uint32Array(1));
    hasNonFinite(r, upload(r, Float32Array.of(1, NaN)), flag, 2);
    hasNonFinite(r, upload(r, Float32Array.of(1, 2)), flag, 2);
    expect(new Uint32Array(await r.read(flag, 4))[0]).toBe(1);
  });
});
