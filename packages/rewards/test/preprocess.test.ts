/** Reward preprocessing against torch (adaptive_avg_pool2d; interpolate(antialias=True) + center crop). */
import { beforeAll, describe, expect, test } from "bun:test";
import { Tensor, initRuntime, scope, scopeAsync } from "@textcraftor/core";
import { gradcheck, rand } from "../../core/test/gradcheck.ts";
import { CLIP_MEAN, CLIP_STD, poolToClip, resampleMatrix, resizeCropToClip } from "../src/index.ts";
import { formula, golden, relError } from "./helpers.ts";

beforeAll(async () => {
  await initRuntime();
});

const pixels = (shape: number[]) =>
  Tensor.from(
    formula(
      shape.reduce((a, b) => a * b),
      (i) => 0.5 + 0.5 * Math.sin(0.23 * i + 0.1),
    ),
    shape,
  );
const run = (fn: () => Tensor) => scopeAsync(async () => fn().toArray());

describe("preprocessing matches torch", () => {
  test("adaptive average pool (uneven windows) + CLIP mean/std", async () => {
    expect(relError(await run(() => poolToClip(pixels([1, 3, 7, 9]), 4)), golden.pool_7x9_to_4)).toBeLessThan(1e-5);
  });

  test("antialiased bilinear downscale of the short side + center crop (offset rounded half to even)", async () => {
    expect(
      relError(await run(() => resizeCropToClip(pixels([2, 3, 12, 20]), 8)), golden.resize_crop_12x20_to_8),
    ).toBeLessThan(1e-5);
  });

  test("bilinear upscale of the short side + center crop", async () => {
    expect(
      relError(await run(() => resizeCropToClip(pixels([1, 3, 6, 5]), 8)), golden.resize_crop_6x5_to_8),
    ).toBeLessThan(1e-5);
  });
});

describe("resize + center crop", () => {
  test("each output sample is a convex combination of input samples", () => {
    const m = resampleMatrix(20, 13, 8);
    for (let j = 0; j < 8; j++) {
      let total = 0;
      for (let i = 0; i < 20; i++) {
        expect(m[i * 8 + j]!).toBeGreaterThanOrEqual(0);
        total += m[i * 8 + j]!;
      }
      expect(total).toBeCloseTo(1, 6);
    }
  });

  test("its gradient matches central differences of a float64 CPU reference", async () => {
    const [height, width, size] = [6, 9, 4];
    const rows = resampleMatrix(height, size, size),
      cols = resampleMatrix(width, Math.trunc((size * width) / height), size);
    const cpu = ([x]: Float64Array[]) => {
      const out: number[] = [];
      for (let c = 0; c < 3; c++)
        for (let i = 0; i < size; i++)
          for (let j = 0; j < size; j++) {
            let v = 0;
            for (let h = 0; h < height; h++)
              for (let w = 0; w < width; w++)
                v += rows[h * size + i]! * cols[w * size + j]! * x![(c * height + h) * width + w]!;
            out.push((v - CLIP_MEAN[c]!) / CLIP_STD[c]!);
          }
      return out;
    };
    const [err] = await gradcheck(([x]) => resizeCropToClip(x!, size), cpu, [
      { data: rand(3 * height * width, 3), shape: [1, 3, height, width] },
    ]);
    expect(err).toBeLessThan(1e-4);
  });

  test("refuses what is not a batch of RGB images", () => {
    expect(() => scope(() => resizeCropToClip(Tensor.zeros([3, 8, 8])))).toThrow(
      "expected RGB images [B, 3, H, W] in [0, 1], got [3,8,8]",
    );
  });
});
