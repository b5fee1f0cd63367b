/** colorfulness, contrast and brightness: PyTorch goldens, and gradients against float64 CPU references. */
import { beforeAll, describe, expect, test } from "bun:test";
import { Tensor, initRuntime, scope } from "@textcraftor/core";
import { gradcheck, rand } from "../../core/test/gradcheck.ts";
import { brightness, colorfulness, contrast } from "../src/index.ts";
import { context, golden, probeGradient, relError } from "./helpers.ts";

beforeAll(async () => {
  await initRuntime();
});

const EPS = 1e-6;
/** Per image: its channels' pixels as float64, for the CPU references. */
function perImage<T>(
  x: Float64Array,
  batch: number,
  fn: (r: Float64Array, g: Float64Array, b: Float64Array) => T,
): T[] {
  const n = x.length / batch / 3;
  return Array.from({ length: batch }, (_, i) =>
    fn(
      ...([0, 1, 2].map((c) => x.subarray((i * 3 + c) * n, (i * 3 + c + 1) * n)) as [
        Float64Array,
        Float64Array,
        Float64Array,
      ]),
    ),
  );
}
const meanOf = (v: Float64Array) => v.reduce((s, a) => s + a, 0) / v.length;
const varianceOf = (v: Float64Array) => {
  const m = meanOf(v);
  return meanOf(v.map((a) => (a - m) ** 2));
};
const luma = (r: Float64Array, g: Float64Array, b: Float64Array) =>
  r.map((_, i) => 0.299 * r[i]! + 0.587 * g[i]! + 0.114 * b[i]!);

const REFERENCES = {
  colorfulness: (x: Float64Array, batch: number) =>
    perImage(x, batch, (r, g, b) => {
      const rg = r.map((_, i) => r[i]! - g[i]!),
        yb = r.map((_, i) => (r[i]! + g[i]!) / 2 - b[i]!);
      return (
        Math.sqrt(varianceOf(rg) + varianceOf(yb) + EPS) + 0.3 * Math.sqrt(meanOf(rg) ** 2 + meanOf(yb) ** 2 + EPS)
      );
    }),
  contrast: (x: Float64Array, batch: number) =>
    perImage(x, batch, (r, g, b) => Math.sqrt(varianceOf(luma(r, g, b)) + EPS)),
  brightness: (x: Float64Array, batch: number) =>
    perImage(x, batch, (r, g, b) => -((meanOf(luma(r, g, b)) - 0.3) ** 2)),
};

const cases = [
  ["colorfulness", colorfulness, golden.colorfulness],
  ["contrast", contrast, golden.contrast],
  ["brightness (target 0.3)", brightness, golden["brightness_target_0.3"]],
] as const;

describe.each(cases)("%s", (_, plugin, ref) => {
  const options: Record<string, string> = plugin.name === "brightness" ? { target: "0.3" } : {};
  test("scores match PyTorch; the gradient matches PyTorch and finite differences", async () => {
    const reward = await plugin.load(context(undefined, options));
    const probe = await probeGradient(reward, ref);
    expect(relError(probe.scores, ref.scores)).toBeLessThan(1e-4);
    expect(probe.goldenDerivativeError).toBeLessThan(1e-4);
    expect(probe.finiteDifferenceError).toBeLessThan(1e-2);
  });

  test("the gradient matches central differences of a float64 CPU reference", async () => {
    const reward = await plugin.load(context(undefined, options));
    const shape = [2, 3, 4, 5];
    const pixels = rand(120, 7).map((v) => 0.5 + 0.45 * v);
    const [err] = await gradcheck(
      ([x]) => reward.score(x!, ["", ""]),
      ([x]) => REFERENCES[plugin.name as keyof typeof REFERENCES](x!, 2),
      [{ data: pixels, shape }],
    );
    expect(err).toBeLessThan(1e-4);
  });
});

test("brightness takes its target from the options and rejects a non-number", async () => {
  const gray = (v: number) => Tensor.from(new Float32Array(3 * 4 * 4).fill(v), [1, 3, 4, 4]);
  const atTarget = await brightness.load(context(undefined, { target: "0.25" }));
  expect(await scope(() => atTarget.score(gray(0.25), [""])).item()).toBeCloseTo(0, 6);
  const byDefault = await brightness.load(context());
  expect(await scope(() => byDefault.score(gray(0.25), [""])).item()).toBeCloseTo(-(0.25 ** 2), 6);
  await expect(brightness.load(context(undefined, { target: "bright" }))).rejects.toThrow(
    "option target=bright: expected a number",
  );
});

test("images that are not [B, 3, H, W] are refused", async () => {
  const reward = await colorfulness.load(context());
  expect(() => scope(() => reward.score(Tensor.zeros([1, 4, 8, 8]), [""]))).toThrow(
    "expected RGB images [B, 3, H, W] in [0, 1], got [1,4,8,8]",
  );
});
