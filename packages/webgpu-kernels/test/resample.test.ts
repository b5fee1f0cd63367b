import { describe, expect, test } from "bun:test";
import {
  adaptiveAvgPool2d,
  adaptiveAvgPool2dCpu,
  adaptiveAvgPool2dGrad,
  adaptiveAvgPool2dGradCpu,
  adaptiveBin,
  upsampleNearest2x,
  upsampleNearest2xCpu,
  upsampleNearest2xGrad,
  upsampleNearest2xGradCpu,
  type PoolShape,
  type ResampleShape,
} from "../src/resample.ts";
import { download, empty, expectClose, getRunner, random, upload } from "./helpers.ts";

const numel = (o: ResampleShape) => o.batch * o.channels * o.height * o.width;
const pooled = (o: PoolShape) => o.batch * o.channels * o.outH * o.outW;

describe("nearest 2× upsampling", () => {
  const shapes: ResampleShape[] = [
    { batch: 1, channels: 1, height: 1, width: 1 },
    { batch: 2, channels: 3, height: 7, width: 13 },
    { batch: 1, channels: 5, height: 8, width: 3 },
  ];

  test("CPU reference copies each pixel into its 2×2 block", () => {
    const out = upsampleNearest2xCpu([1, 2, 3, 4, 5, 6], { batch: 1, channels: 1, height: 2, width: 3 });
    expect(Array.from(out.subarray(0, 12))).toEqual([1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3]);
    expect(Array.from(out.subarray(12))).toEqual([4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6]);
  });

  test("forward and backward match the CPU references", async () => {
    const r = await getRunner();
    for (const [i, o] of shapes.entries()) {
      const n = numel(o);
      const x = random(n, i + 1),
        gy = random(4 * n, i + 11);
      const out = empty(r, 4 * n),
        gx = empty(r, n);
      upsampleNearest2x(r, upload(r, x), out, o);
      upsampleNearest2xGrad(r, upload(r, gy), gx, o);
      expectClose(await download(r, out, 4 * n), upsampleNearest2xCpu(x, o), 0, `upsample ${JSON.stringify(o)}`);
      expectClose(
        await download(r, gx, n),
        upsampleNearest2xGradCpu(gy, o),
        1e-6,
        `upsample grad ${JSON.stringify(o)}`,
      );
    }
  });

  test("the backward is the adjoint of the forward: <up(x), g> = <x, up*(g)>", () => {
    const o = shapes[1]!;
    const x = random(numel(o), 5),
      g = random(4 * numel(o), 6);
    const lhs = upsampleNearest2xCpu(x, o).reduce((s, v, i) => s + v * g[i]!, 0);
    const rhs = upsampleNearest2xGradCpu(g, o).reduce((s, v, i) => s + v * x[i]!, 0);
    expect(Math.abs(lhs - rhs)).toBeLessThan(1e-9 * Math.abs(lhs) + 1e-12);
  });
});

describe("adaptive average pooling", () => {
  test("bins follow PyTorch: [floor(i·H/out), ceil((i+1)·H/out))", () => {
    // 37 → 16 stands in for 512 → 224: neither divides the other, so bins have two sizes and overlap.
    const bins = Array.from({ length: 16 }, (_, i) => adaptiveBin(i, 37, 16));
    expect(bins.slice(0, 4)).toEqual([
      [0, 3],
      [2, 5],
      [4, 7],
      [6, 10],
    ]);
    expect(bins[15]).toEqual([34, 37]);
    expect(new Set(bins.map(([a, b]) => b - a))).toEqual(new Set([3, 4]));
    expect(adaptiveBin(223, 512, 224)).toEqual([509, 512]);
    expect(adaptiveBin(1, 512, 224)).toEqual([2, 5]);
    // Identity: every bin is one pixel.
    expect(Array.from({ length: 8 }, (_, i) => adaptiveBin(i, 8, 8))).toEqual(
      Array.from({ length: 8 }, (_, i) => [i, i + 1]),
    );
  });

  const shapes: PoolShape[] = [
    { batch: 2, channels: 3, height: 37, width: 37, outH: 16, outW: 16 },
    { batch: 1, channels: 2, height: 8, width: 8, outH: 8, outW: 8 },
    { batch: 1, channels: 3, height: 13, width: 7, outH: 5, outW: 3 },
    { batch: 1, channels: 1, height: 3, width: 5, outH: 7, outW: 8 }, // upsampling: a pixel feeds several bins
    { batch: 2, channels: 1, height: 9, width: 9, outH: 1, outW: 1 },
  ];

  test("forward and backward match the CPU references", async () => {
    const r = await getRunner();
    for (const [i, o] of shapes.entries()) {
      const x = random(numel(o), i + 1),
        gy = random(pooled(o), i + 21);
      const out = empty(r, pooled(o)),
        gx = empty(r, numel(o));
      adaptiveAvgPool2d(r, upload(r, x), out, o);
      adaptiveAvgPool2dGrad(r, upload(r, gy), gx, o);
      expectClose(await download(r, out, pooled(o)), adaptiveAvgPool2dCpu(x, o), 1e-6, `pool ${JSON.stringify(o)}`);
      expectClose(
        await download(r, gx, numel(o)),
        adaptiveAvgPool2dGradCpu(gy, o),
        1e-6,
        `pool grad ${JSON.stringify(o)}`,
      );
    }
  });

  test("pooling to the same size is the identity, and its gradient too", async () => {
    const r = await getRunner();
    const o = shapes[1]!;
    const x = random(numel(o), 3);
    const out = empty(r, numel(o)),
      gx = empty(r, numel(o));
    adaptiveAvgPool2d(r, upload(r, x), out, o);
    adaptiveAvgPool2dGrad(r, upload(r, x), gx, o);
    expect(Array.from(await download(r, out, numel(o)))).toEqual(Array.from(x));
    expect(Array.from(await download(r, gx, numel(o)))).toEqual(Array.from(x));
  });

  test("the backward is the adjoint of the forward on the 37 → 16 analogue", () => {
    const o = shapes[0]!;
    const x = random(numel(o), 7),
      g = random(pooled(o), 8);
    const lhs = adaptiveAvgPool2dCpu(x, o).reduce((s, v, i) => s + v * g[i]!, 0);
    const rhs = adaptiveAvgPool2dGradCpu(g, o).reduce((s, v, i) => s + v * x[i]!, 0);
    expect(Math.abs(lhs - rhs)).toBeLessThan(1e-9 * Math.abs(lhs) + 1e-12);
  });

  test("512×512 → 224×224 on the GPU", async () => {
    const r = await getRunner();
    const o: PoolShape = { batch: 1, channels: 3, height: 512, width: 512, outH: 224, outW: 224 };
    const x = random(numel(o), 9);
    const out = empty(r, pooled(o));
    adaptiveAvgPool2d(r, upload(r, x), out, o);
    expectClose(await download(r, out, pooled(o)), adaptiveAvgPool2dCpu(x, o), 1e-6, "512 → 224");
  });
});
