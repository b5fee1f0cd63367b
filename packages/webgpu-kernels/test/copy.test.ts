import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { contiguousStrides, permuteStrides, stridedCopy, stridedCopyCpu } from "../src/copy.ts";
import { download, empty, getRunner, random, upload } from "./helpers.ts";

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Element of a dense tensor at coordinate c: the independent oracle the properties compare against. */
const at = (x: Float32Array, shape: readonly number[], c: readonly number[]) =>
  x[c.reduce((acc, v, i) => acc * shape[i]! + v, 0)]!;

/** Every coordinate of `shape` in row-major order. */
function* coords(shape: readonly number[]): Generator<number[]> {
  for (let i = 0; i < numel(shape); i++) {
    const c: number[] = [];
    for (let d = shape.length - 1, rest = i; d >= 0; d--) {
      c[d] = rest % shape[d]!;
      rest = Math.floor(rest / shape[d]!);
    }
    yield c;
  }
}

const shapeArb = fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 6 });

describe("strided copy", () => {
  test("awkward contiguous sizes and the rank-0 case", async () => {
    const r = await getRunner();
    for (const n of [1, 3, 77, 129, 4097]) {
      const x = random(n, n),
        out = empty(r, n);
      stridedCopy(r, upload(r, x), out, { shape: [n], srcStrides: [1] });
      expect(await download(r, out, n)).toEqual(x);
    }
    const out = empty(r, 1);
    stridedCopy(r, upload(r, Float32Array.of(1, 2, 3)), out, { shape: [], srcStrides: [], srcOffset: 2 });
    expect(Array.from(await download(r, out, 1))).toEqual([3]);
  });

  test("[B,L,H,D] → [B,H,L,D] (attention head split)", async () => {
    const r = await getRunner();
    const [B, L, H, D] = [2, 77, 3, 5];
    const x = random(B * L * H * D, 4),
      out = empty(r, x.length);
    const shape = [B, H, L, D];
    stridedCopy(r, upload(r, x), out, { shape, srcStrides: permuteStrides([B, L, H, D], [0, 2, 1, 3]) });
    const got = await download(r, out, x.length);
    for (const [b, h, l, d] of coords(shape))
      expect(at(got, shape, [b!, h!, l!, d!])).toBe(at(x, [B, L, H, D], [b!, l!, h!, d!]));
  });

  test("random permutations (property)", async () => {
    const r = await getRunner();
    const arb = shapeArb.chain((shape) =>
      fc.tuple(
        fc.constant(shape),
        fc.shuffledSubarray([...shape.keys()], { minLength: shape.length, maxLength: shape.length }),
      ),
    );
    await fc.assert(
      fc.asyncProperty(arb, async ([shape, perm]) => {
        const x = random(numel(shape), shape.length),
          out = empty(r, x.length);
        const outShape = perm.map((i) => shape[i]!);
        stridedCopy(r, upload(r, x), out, { shape: outShape, srcStrides: permuteStrides(shape, perm) });
        const got = await download(r, out, x.length);
        for (const c of coords(outShape)) {
          const src = new Array<number>(shape.length);
          perm.forEach((p, i) => {
            src[p] = c[i]!;
          });
          if (at(got, outShape, c) !== at(x, shape, src))
            throw new Error(`perm [${perm}] of [${shape}] differs at [${c}]`);
        }
      }),
      { numRuns: 20, seed: 7 },
    );
  });

  test("random slices with steps, scattered back with accumulate (property)", async () => {
    const r = await getRunner();
    const dimArb = fc
      .integer({ min: 1, max: 6 })
      .chain((size) => fc.tuple(fc.constant(size), fc.nat(size - 1), fc.integer({ min: 1, max: 3 })));
    await fc.assert(
      fc.asyncProperty(fc.array(dimArb, { minLength: 1, maxLength: 6 }), async (dims) => {
        const shape = dims.map(([size]) => size);
        const starts = dims.map(([, start]) => start),
          steps = dims.map(([, , step]) => step);
        const sliced = dims.map(([size, start, step]) => Math.ceil((size - start) / step));
        const strides = contiguousStrides(shape);
        const view = {
          shape: sliced,
          srcStrides: strides.map((s, i) => s * steps[i]!),
          srcOffset: starts.reduce((a, v, i) => a + v * strides[i]!, 0),
        };
        const x = random(numel(shape), 11),
          out = empty(r, numel(sliced));
        stridedCopy(r, upload(r, x), out, view);
        const got = await download(r, out, numel(sliced));
        for (const c of coords(sliced)) {
          if (
            at(got, sliced, c) !==
            at(
              x,
              shape,
              c.map((v, i) => starts[i]! + v * steps[i]!),
            )
          )
            throw new Error(`slice of [${shape}] differs at [${c}]`);
        }
        // Slice backward: add the slice's gradient into a gradient of the full shape that already holds values.
        const grad = random(numel(shape), 12),
          g = upload(r, grad);
        const back = {
          shape: sliced,
          srcStrides: contiguousStrides(sliced),
          dstStrides: view.srcStrides,
          dstOffset: view.srcOffset,
          accumulate: true,
        };
        stridedCopy(r, upload(r, got), g, back);
        expect(await download(r, g, grad.length)).toEqual(stridedCopyCpu(got, grad, back));
      }),
      { numRuns: 20, seed: 8 },
    );
  });

  test("concat along a random axis = two copies into offsets, and its backward = two slice copies (property)", async () => {
    const r = await getRunner();
    const arb = shapeArb.chain((shape) =>
      fc.tuple(fc.constant(shape), fc.nat(shape.length - 1), fc.integer({ min: 1, max: 4 })),
    );
    await fc.assert(
      fc.asyncProperty(arb, async ([aShape, axis, bSize]) => {
        const bShape = aShape.map((d, i) => (i === axis ? bSize : d));
        const outShape = aShape.map((d, i) => (i === axis ? d + bSize : d));
        const a = random(numel(aShape), 21),
          b = random(numel(bShape), 22);
        const strides = contiguousStrides(outShape),
          bOffset = aShape[axis]! * strides[axis]!;
        const out = empty(r, numel(outShape));
        stridedCopy(r, upload(r, a), out, {
          shape: aShape,
          srcStrides: contiguousStrides(aShape),
          dstStrides: strides,
        });
        stridedCopy(r, upload(r, b), out, {
          shape: bShape,
          srcStrides: contiguousStrides(bShape),
          dstStrides: strides,
          dstOffset: bOffset,
        });
        const got = await download(r, out, numel(outShape));
        for (const c of coords(outShape)) {
          const inA = c[axis]! < aShape[axis]!;
          const want = inA
            ? at(a, aShape, c)
            : at(
                b,
                bShape,
                c.map((v, i) => (i === axis ? v - aShape[axis]! : v)),
              );
          if (at(got, outShape, c) !== want)
            throw new Error(`concat of [${aShape}] and [${bShape}] on axis ${axis} differs at [${c}]`);
        }
        const outBuf = upload(r, got),
          ga = empty(r, a.length),
          gb = empty(r, b.length);
        stridedCopy(r, outBuf, ga, { shape: aShape, srcStrides: strides });
        stridedCopy(r, outBuf, gb, { shape: bShape, srcStrides: strides, srcOffset: bOffset });
        expect(await download(r, ga, a.length)).toEqual(a);
        expect(await download(r, gb, b.length)).toEqual(b);
      }),
      { numRuns: 20, seed: 9 },
    );
  });

  test("views that leave their buffer are refused before launch", async () => {
    const r = await getRunner();
    expect(() => stridedCopy(r, empty(r, 4), empty(r, 8), { shape: [2, 3], srcStrides: [3, 1] })).toThrow(
      "src view reaches element 5 but its buffer holds 4",
    );
    expect(() => permuteStrides([2, 3], [0, 0])).toThrow("permutation [0,0]");
  });
});
