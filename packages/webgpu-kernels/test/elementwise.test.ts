import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  BINARY,
  UNARY,
  binary,
  binaryCpu,
  broadcastShapes,
  unary,
  unaryCpu,
  type BinaryOp,
  type UnaryOp,
} from "../src/elementwise.ts";
import { download, empty, expectClose, getRunner, random, upload } from "./helpers.ts";

const SIZES = [1, 3, 77, 129, 4097];
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

describe("unary kernels match their CPU references", () => {
  for (const op of Object.keys(UNARY) as UnaryOp[]) {
    test(op, async () => {
      const r = await getRunner();
      for (const n of SIZES) {
        // Keep inputs in each op's domain: positive for log/sqrt/rsqrt/recip.
        const x = random(n, n + op.length, 3).map((v) =>
          ["log", "sqrt", "rsqrt", "recip"].includes(op) ? Math.abs(v) + 0.1 : v,
        );
        const out = empty(r, n);
        unary(r, op, upload(r, x), out, n, 1.5, -0.25);
        expectClose(await download(r, out, n), unaryCpu(op, x, 1.5, -0.25), 2e-6, `${op}[${n}]`);
      }
    });
  }
});

describe("binary kernels with broadcasting", () => {
  test("every op on same-shape inputs", async () => {
    const r = await getRunner();
    for (const op of Object.keys(BINARY) as BinaryOp[]) {
      for (const n of SIZES) {
        const a = random(n, 7, 2),
          b = random(n, 8, 2).map((v) => (op === "div" || op === "pow" ? Math.abs(v) + 0.5 : v));
        const aa = op === "pow" ? a.map((v) => Math.abs(v) + 0.1) : a;
        const out = empty(r, n);
        binary(r, op, upload(r, aa), [n], upload(r, b), [n], out);
        expectClose(await download(r, out, n), binaryCpu(op, aa, [n], b, [n]), 2e-6, `${op}[${n}]`);
      }
    }
  });

  test("random broadcast shapes (property)", async () => {
    const r = await getRunner();
    // A base shape, and for each side a random subset of dims set to 1 and a random number of leading dims dropped.
    const dim = fc.integer({ min: 1, max: 7 });
    const arb = fc.tuple(
      fc.array(dim, { minLength: 1, maxLength: 5 }),
      fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
      fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
      fc.nat(4),
      fc.nat(4),
    );
    await fc.assert(
      fc.asyncProperty(arb, async ([base, ma, mb, da, db]) => {
        const aShape = base.map((d, i) => (ma[i] ? 1 : d)).slice(Math.min(da, base.length - 1));
        const bShape = base.map((d, i) => (mb[i] ? 1 : d)).slice(Math.min(db, base.length - 1));
        const a = random(numel(aShape), 1),
          b = random(numel(bShape), 2);
        const n = numel(broadcastShapes(aShape, bShape));
        const out = empty(r, n);
        binary(r, "mul", upload(r, a), aShape, upload(r, b), bShape, out);
        expectClose(await download(r, out, n), binaryCpu("mul", a, aShape, b, bShape), 1e-6, `[${aShape}]*[${bShape}]`);
      }),
      { numRuns: 25, seed: 42 },
    );
  });

  test("incompatible shapes are refused with both shapes named", () => {
    expect(() => broadcastShapes([2, 3], [4, 3])).toThrow("[2,3] and [4,3]");
  });

  test("rank 6 broadcasts; rank 7 is refused with both shapes named", async () => {
    const r = await getRunner();
    const aShape = [2, 1, 3, 1, 2, 3],
      bShape = [3, 2, 1, 1];
    const a = random(numel(aShape), 5),
      b = random(numel(bShape), 6);
    const n = numel(broadcastShapes(aShape, bShape));
    const out = empty(r, n);
    binary(r, "sub", upload(r, a), aShape, upload(r, b), bShape, out);
    expectClose(await download(r, out, n), binaryCpu("sub", a, aShape, b, bShape), 1e-6, "rank 6");
    const x = upload(r, new Float32Array(2));
    expect(() => binary(r, "add", x, [1, 1, 1, 1, 1, 1, 2], x, [2], empty(r, 2))).toThrow(
      "binary add: shapes [1,1,1,1,1,1,2] and [2] broadcast to rank 7, but at most 6 dims are supported",
    );
  });

  test("a grid larger than 65535 workgroups folds into 2-D", async () => {
    const r = await getRunner();
    const n = 65536 * 256 + 3; // 65537 workgroups of 256
    expect(r.grid(Math.ceil(n / 256))[1]).toBeGreaterThan(1);
    const x = random(n, 3);
    const out = empty(r, n);
    unary(r, "neg", upload(r, x), out, n);
    const got = await download(r, out, n);
    expect(got[n - 1]).toBe(-x[n - 1]!);
    expect(got[12345]).toBe(-x[12345]!);
  });
});
