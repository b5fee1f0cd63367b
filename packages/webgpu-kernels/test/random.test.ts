import { describe, expect, test } from "bun:test";
import {
  philox4x32,
  randomNormal,
  randomNormalCpu,
  randomUniform,
  randomUniformCpu,
  type RandomOptions,
} from "../src/random.ts";
import { download, empty, getRunner } from "./helpers.ts";
import type { KernelRunner } from "../src/runner.ts";

const draw = async (r: KernelRunner, fill: typeof randomNormal, o: RandomOptions) => {
  const out = empty(r, o.n);
  fill(r, out, o);
  return download(r, out, o.n);
};

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe("Philox4x32-10", () => {
  test("matches Random123's known-answer vectors", () => {
    const hex = (s: string) => s.split(" ").map((w) => parseInt(w, 16));
    expect<number[]>(philox4x32(hex("0 0 0 0"), hex("0 0"))).toEqual(hex("6627e8d5 e169c58d bc57ac4c 9b00dbd8"));
    expect<number[]>(philox4x32(hex("ffffffff ffffffff ffffffff ffffffff"), hex("ffffffff ffffffff"))).toEqual(
      hex("408f276d 41c83b0e a20bc7c6 6d5451fd"),
    );
    expect<number[]>(philox4x32(hex("243f6a88 85a308d3 13198a2e 03707344"), hex("a4093822 299f31d0"))).toEqual(
      hex("d16cfe09 94fdcceb 5001e420 24126ea1"),
    );
  });
});

describe("random kernels", () => {
  test("the GPU matches the CPU reference: uniforms bit for bit, normals within 1e-6", async () => {
    const r = await getRunner();
    // Offsets cover every phase inside a block, a 64-bit block number, and a seed with a high word.
    for (const [n, seed, offset] of [
      [1, 0, 0],
      [3, 1, 1],
      [77, 2 ** 40 + 5, 2],
      [129, [7, 0xffffffff], 3],
      [4097, 2 ** 53, 2 ** 52 + 1],
    ] as const) {
      const o = { n, seed, offset };
      const uniforms = await draw(r, randomUniform, o);
      expect(uniforms).toEqual(randomUniformCpu(n, seed, offset));
      expect(uniforms.every((u) => u > 0 && u <= 1)).toBe(true);
      expect(maxAbsDiff(await draw(r, randomNormal, o), randomNormalCpu(n, seed, offset))).toBeLessThan(1e-6);
    }
    const n = 100_000; // wide enough to reach the tails, where ln u is smallest
    expect(maxAbsDiff(await draw(r, randomNormal, { n, seed: 99 }), randomNormalCpu(n, 99))).toBeLessThan(1e-6);
  });

  test("a million normals have mean 0 and variance 1", async () => {
    const r = await getRunner();
    const x = await draw(r, randomNormal, { n: 1_000_000, seed: 1234 });
    let sum = 0,
      sq = 0;
    for (const v of x) {
      sum += v;
      sq += v * v;
    }
    const mean = sum / x.length;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(sq / x.length - mean * mean - 1)).toBeLessThan(0.02);
  });

  test("deterministic per seed, different across seeds", async () => {
    const r = await getRunner();
    const a = await draw(r, randomNormal, { n: 4097, seed: 5 });
    expect(await draw(r, randomNormal, { n: 4097, seed: 5 })).toEqual(a);
    const b = await draw(r, randomNormal, { n: 4097, seed: 6 });
    expect(a.filter((v, i) => v === b[i]).length).toBeLessThan(5);
  });

  test("drawing n then n more at offset n equals drawing 2n", async () => {
    const r = await getRunner();
    for (const fill of [randomNormal, randomUniform]) {
      for (const n of [1, 77, 129]) {
        const whole = await draw(r, fill, { n: 2 * n, seed: 3 });
        expect(await draw(r, fill, { n, seed: 3 })).toEqual(whole.subarray(0, n));
        expect(await draw(r, fill, { n, seed: 3, offset: n })).toEqual(whole.subarray(n));
      }
    }
  });

  test("bad seeds and offsets are refused", async () => {
    const r = await getRunner();
    const out = empty(r, 1);
    expect(() => randomNormal(r, out, { n: 1, seed: -1 })).toThrow("random seed must be an integer");
    expect(() => randomNormal(r, out, { n: 1, seed: [0, 2 ** 32] })).toThrow("random seed words must be u32");
    expect(() => randomNormal(r, out, { n: 1, seed: 0, offset: 0.5 })).toThrow("random offset");
  });
});
