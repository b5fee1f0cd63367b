import { describe, expect, test } from "bun:test";
import { softmax, softmaxBackward, softmaxBackwardCpu, softmaxCpu, type SoftmaxShape } from "../src/softmax.ts";
import type { KernelRunner } from "../src/runner.ts";
import { download, empty, expectClose, getRunner, random, reductionForms, upload } from "./helpers.ts";

/** Loops over many sizes on lavapipe (2 CPU cores, shared) need more than bun's 5 s default. */

const SIZES = [1, 3, 77, 129, 4097];

async function checkSoftmax(r: KernelRunner, s: SoftmaxShape, x: Float32Array) {
  const n = s.rows * s.cols;
  const out = empty(r, n);
  softmax(r, upload(r, x), out, s);
  const y = await download(r, out, n);
  expectClose(y, softmaxCpu(x, s), 1e-5, `softmax [${s.rows}, ${s.cols}]`);
  return y;
}

for (const { form, r } of await reductionForms())
  describe(`softmax over the last dimension (${form})`, () => {
    test("awkward sizes", async () => {
      for (const rows of [1, 3, 77])
        for (const cols of SIZES) await checkSoftmax(r, { rows, cols }, random(rows * cols, cols, 5));
    });

    test("logits around 80–100 do not overflow", async () => {
      const s = { rows: 3, cols: 4097 };
      const y = await checkSoftmax(
        r,
        s,
        random(s.rows * s.cols, 3, 10).map((v) => v + 90),
      );
      expect(y.every(Number.isFinite)).toBe(true);
    });
  });

// Grid folding is the same in both forms: one is enough.
test("softmax over more rows than one grid dimension holds", async () => {
  await checkSoftmax(await getRunner(), { rows: 65537, cols: 3 }, random(65537 * 3, 4, 3));
});

describe("softmax backward", () => {
  test("matches the CPU reference", async () => {
    for (const { form, r } of await reductionForms())
      for (const rows of [1, 3, 77]) {
        for (const cols of SIZES) {
          const s = { rows, cols },
            n = rows * cols;
          const y = new Float32Array(softmaxCpu(random(n, cols, 3), s));
          const gradY = random(n, cols + 1);
          const gradX = empty(r, n);
          softmaxBackward(r, upload(r, y), upload(r, gradY), gradX, s);
          expectClose(
            await download(r, gradX, n),
            softmaxBackwardCpu(y, gradY, s),
            1e-5,
            `softmaxBackward [${rows}, ${cols}] (${form})`,
          );
        }
      }
  });

  test("the CPU reference matches central finite differences", () => {
    const s = { rows: 2, cols: 5 },
      n = 10,
      h = 1e-6;
    const x = Float64Array.from(random(n, 11, 2)),
      cot = Float64Array.from(random(n, 12));
    const loss = (v: Float64Array) => softmaxCpu(v, s).reduce((a, y, i) => a + y * cot[i]!, 0);
    const numeric = x.map((_, i) => {
      const plus = x.slice(),
        minus = x.slice();
      plus[i]! += h;
      minus[i]! -= h;
      return (loss(plus) - loss(minus)) / (2 * h);
    });
    expectClose(softmaxBackwardCpu(softmaxCpu(x, s), cot, s), numeric, 1e-7, "d softmax / dx");
  });
});
