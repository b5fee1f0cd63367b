import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { defineKernel } from "../src/kernel.ts";
import {
  ADD,
  type Combine,
  reduceEntry,
  sum,
  sumAll,
  sumAxes,
  sumAxesCpu,
  sumCpu,
  type SumShape,
  workgroupReduce,
} from "../src/reduce.ts";
import { download, empty, expectClose, random, reductionForms, upload } from "./helpers.ts";

/** Loops over many sizes on lavapipe (2 CPU cores, shared) need more than bun's 5 s default. */

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

// Every thread of a workgroup writes the total it got back: all must get the same one, in either form.
const reduceTest = defineKernel({
  name: "test-workgroupReduce",
  inputs: { x: "f32" },
  outputs: { out: "f32" },
  enables: (s: { lanes: number; subgroups: boolean; combine: Combine }) => (s.subgroups ? ["subgroups"] : []),
  body: ({ lanes, subgroups, combine }) => /* wgsl */ `
    ${workgroupReduce("reduce", "f32", combine, lanes, { subgroups })}
    @compute @workgroup_size(${lanes})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32${reduceEntry(subgroups).params}) {
      let i = wid.x * ${lanes}u + lid;
      out[i] = reduce(x[i], lid, 0u${reduceEntry(subgroups).args});
    }`,
});

describe("workgroupReduce", () => {
  const combines: [string, Combine, (a: number, b: number) => number][] = [
    ["add", ADD, (a, b) => a + b],
    ["max", { expr: "max(a, b)", subgroupOp: "subgroupMax" }, (a, b) => Math.max(a, b)],
    // No builtin: the subgroup form merges with subgroupShuffleXor (softmax's (max, sum) pairs take this path).
    // The values are positive, so a lane past a small workgroup's end read as 0 would show in the minimum.
    ["shuffled min", { expr: "min(a, b)" }, (a, b) => Math.min(a, b)],
    // Not idempotent: a partial counted twice (fewer partials than a subgroup has lanes) would show.
    ["shuffled add", { expr: "a + b" }, (a, b) => a + b],
  ];
  test("every thread gets the workgroup's total, for workgroups smaller and larger than a subgroup", async () => {
    for (const { form, r } of await reductionForms())
      for (const lanes of [4, 32, 256])
        for (const [name, combine, f] of combines) {
          const groups = 3,
            x = random(groups * lanes, lanes).map((v) => v + 2);
          const out = empty(r, x.length);
          reduceTest.run(
            r,
            { lanes, subgroups: form === "subgroups", combine },
            { buffers: { x: upload(r, x), out }, workgroups: groups },
          );
          const expected = Array.from({ length: x.length }, (_, i) => {
            const first = i - (i % lanes);
            return x.subarray(first, first + lanes).reduce(f);
          });
          expectClose(await download(r, out, x.length), expected, 1e-6, `${form} ${name} over ${lanes} lanes`);
        }
  });

  test("the subgroup form takes one column and needs the subgroups extension", () => {
    expect(reduceTest.wgsl({ lanes: 32, subgroups: true, combine: ADD })).toStartWith("enable subgroups;");
    expect(reduceTest.wgsl({ lanes: 32, subgroups: false, combine: ADD })).not.toContain("subgroup");
    expect(() => workgroupReduce("s", "f32", ADD, 32, { columns: 4, subgroups: true })).toThrow("one column");
  });
});

for (const { form, r } of await reductionForms()) {
  async function checkSum(s: SumShape, scale = 1, offset = 0) {
    const x = random(s.outer * s.reduce * s.inner, s.reduce + s.inner, scale).map((v) => v + offset);
    const out = empty(r, s.outer * s.inner);
    sum(r, upload(r, x), out, s);
    expectClose(
      await download(r, out, s.outer * s.inner),
      sumCpu(x, s),
      1e-5,
      `sum [${s.outer}, ${s.reduce}, ${s.inner}]`,
    );
  }

  describe(`sum over the middle axis of [outer, reduce, inner] (${form})`, () => {
    test("awkward sizes", async () => {
      for (const outer of [1, 3])
        for (const reduce of [1, 3, 77, 129, 4097])
          for (const inner of [1, 3, 77]) await checkSum({ outer, reduce, inner });
    });

    test("many short rows: one thread per output (a per-head dot product, a bias over a short batch)", async () => {
      await checkSum({ outer: 2048, reduce: 16, inner: 1 });
      await checkSum({ outer: 5, reduce: 64, inner: 33 });
      await checkSum({ outer: 1, reduce: 65, inner: 700 });
    });

    test("a long axis with few outputs takes two passes (a loss over 1e6 elements, a skinny bias gradient)", async () => {
      await checkSum({ outer: 1, reduce: 1_000_000, inner: 1 });
      await checkSum({ outer: 1, reduce: 1_000_000, inner: 1 }, 1, 1); // all positive, like a squared error
      await checkSum({ outer: 2, reduce: 50_000, inner: 3 });
      await checkSum({ outer: 1, reduce: 20_000, inner: 40 });
    });

    test("two chunked sums queued before any read share the scratch buffer safely", async () => {
      const s = { outer: 1, reduce: 300_000, inner: 1 };
      const a = random(s.reduce, 1),
        b = random(s.reduce, 2, 1).map((v) => v + 2);
      const outA = empty(r, 1),
        outB = empty(r, 1);
      sum(r, upload(r, a), outA, s);
      sum(r, upload(r, b), outB, s);
      expectClose(await download(r, outA, 1), sumCpu(a, s), 1e-5, "first");
      expectClose(await download(r, outB, 1), sumCpu(b, s), 1e-5, "second");
    });

    test("sumAll", async () => {
      const x = random(12345, 9);
      const out = empty(r, 1);
      sumAll(r, upload(r, x), out, x.length);
      expectClose(await download(r, out, 1), sumCpu(x, { outer: 1, reduce: x.length, inner: 1 }), 1e-5);
    });
  });

  describe(`sumAxes over any set of axes (${form})`, () => {
    async function checkAxes(shape: number[], axes: number[]) {
      const x = random(numel(shape), shape.length + axes.length);
      const expected = sumAxesCpu(x, shape, axes);
      const out = empty(r, expected.length);
      sumAxes(r, upload(r, x), out, shape, axes);
      expectClose(await download(r, out, expected.length), expected, 1e-5, `sum of [${shape}] over (${axes})`);
    }

    test("NCHW bias gradient: batch and spatial around the channels", async () => {
      await checkAxes([2, 64, 4097], [0, 2]);
      await checkAxes([2, 3, 200, 200], [0, 2, 3]); // three output channels over 80 000 values each: chunked
      await checkAxes([3, 77, 129], [0, 1]);
    });

    test("no axes copies, all axes sum everything, negative axes count from the end", async () => {
      await checkAxes([3, 5], []);
      await checkAxes([3, 5, 7], [0, 1, 2]);
      await checkAxes([4, 1, 6, 5], [-1, 0]);
      await checkAxes([], []);
    });

    test("random shapes and axes (property)", async () => {
      const arb = fc
        .array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 6 })
        .chain((shape) => fc.tuple(fc.constant(shape), fc.subarray([...shape.keys()])));
      await fc.assert(
        fc.asyncProperty(arb, ([shape, axes]) => checkAxes(shape, axes)),
        { numRuns: 20, seed: 7 },
      );
    });

    test("an axis out of range is refused with the shape named", async () => {
      expect(() => sumAxes(r, empty(r, 6), empty(r, 6), [2, 3], [2])).toThrow("axis 2 is out of range for shape [2,3]");
    });
  });
}
