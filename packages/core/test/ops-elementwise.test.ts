import { beforeAll, describe, expect, test } from "bun:test";
import { unaryCpu, binaryCpu } from "@textcraftor/webgpu-kernels";
import * as T from "../src/index.ts";
import { gradcheck, rand } from "./gradcheck.ts";

beforeAll(async () => {
  await T.initRuntime();
});

const TOL = 2e-3;
const unary = {
  silu: T.silu,
  gelu: T.gelu,
  quickGelu: T.quickGelu,
  sigmoid: T.sigmoid,
  exp: T.exp,
  tanh: T.tanh,
  square: T.square,
} as const;

describe("elementwise gradients match finite differences", () => {
  for (const [name, fn] of Object.entries(unary)) {
    test(name, async () => {
      const x = rand(77, 3, 2);
      const [err] = await gradcheck(
        ([a]) => fn(a!),
        ([a]) => unaryCpu(name as keyof typeof unary, a!),
        [{ data: x, shape: [7, 11] }],
      );
      expect(err).toBeLessThan(TOL);
    });
  }

  test("geglu: value · GELU(gate) over the halves of the last dimension", async () => {
    const cpu = (x: Float64Array) => {
      const rows = 5,
        n = 7;
      return Float64Array.from({ length: rows * n }, (_, i) => {
        const row = Math.floor(i / n),
          c = i % n;
        return x[row * 2 * n + c]! * unaryCpu("gelu", [x[row * 2 * n + n + c]!])[0]!;
      });
    };
    const [err] = await gradcheck(
      ([a]) => T.geglu(a!),
      ([a]) => cpu(a!),
      [{ data: rand(70, 4, 2), shape: [5, 14] }],
    );
    expect(err).toBeLessThan(TOL);
    expect(() => T.geglu(T.Tensor.zeros([2, 3]))).toThrow("must split into two equal halves");
  });

  test("log and sqrt on positive inputs", async () => {
    const x = rand(13, 5).map((v) => Math.abs(v) + 0.5);
    expect(
      (
        await gradcheck(
          ([a]) => T.log(a!),
          ([a]) => unaryCpu("log", a!),
          [{ data: x, shape: [13] }],
        )
      )[0],
    ).toBeLessThan(TOL);
    expect(
      (
        await gradcheck(
          ([a]) => T.sqrt(a!),
          ([a]) => unaryCpu("sqrt", a!),
          [{ data: x, shape: [13] }],
        )
      )[0],
    ).toBeLessThan(TOL);
  });

  for (const op of ["add", "sub", "mul", "div"] as const) {
    test(`${op} with broadcasting on both sides`, async () => {
      const a = rand(3 * 1 * 5, 1),
        b = rand(4 * 1, 2).map((v) => (op === "div" ? Math.abs(v) + 0.5 : v));
      const errs = await gradcheck(
        ([x, y]) => T[op](x!, y!),
        ([x, y]) => binaryCpu(op, x!, [3, 1, 5], y!, [4, 1]),
        [
          { data: a, shape: [3, 1, 5] },
          { data: b, shape: [4, 1] },
        ],
      );
      for (const e of errs) expect(e).toBeLessThan(TOL);
    });
  }

  for (const op of ["maximum", "minimum"] as const) {
    test(`${op} with broadcasting: the larger (smaller) side takes the gradient`, async () => {
      const a = rand(3 * 1 * 5, 1),
        b = rand(4 * 1, 2);
      const errs = await gradcheck(
        ([x, y]) => T[op](x!, y!),
        ([x, y]) => binaryCpu(op, x!, [3, 1, 5], y!, [4, 1]),
        [
          { data: a, shape: [3, 1, 5] },
          { data: b, shape: [4, 1] },
        ],
      );
      for (const e of errs) expect(e).toBeLessThan(TOL);
    });
  }

  test("maximum and minimum split a tie's gradient evenly, as torch does; a number bound keeps it (torch.clamp)", async () => {
    const a = T.Tensor.from([1, 2, 3]).requireGrad(),
      b = T.Tensor.from([1, 0, 5]).requireGrad();
    T.scope(() => T.sum(T.maximum(a, b)).backward());
    expect(Array.from(await a.grad!.toArray())).toEqual([0.5, 1, 0]);
    expect(Array.from(await b.grad!.toArray())).toEqual([0.5, 0, 1]);
    a.grad!.dispose();
    a.grad = null;
    T.scope(() => T.sum(T.minimum(a, 2)).backward());
    expect(Array.from(await a.grad!.toArray())).toEqual([1, 1, 0]);
    for (const t of [a, b]) {
      t.grad?.dispose();
      t.dispose();
    }
  });

  test("a tensor used twice sums its gradients (x·x + x)", async () => {
    const x = rand(9, 4);
    const [err] = await gradcheck(
      ([a]) => a!.mul(a!).add(a!),
      ([a]) => a!.map((v) => v * v + v),
      [{ data: x, shape: [9] }],
    );
    expect(err).toBeLessThan(TOL);
  });

  test("scalar operands and reshape", async () => {
    const x = rand(12, 6);
    const [err] = await gradcheck(
      ([a]) => a!.mul(3).add(1).reshape([3, 4]).div(2).sub(0.5),
      ([a]) => a!.map((v) => (v * 3 + 1) / 2 - 0.5),
      [{ data: x, shape: [12] }],
    );
    expect(err).toBeLessThan(TOL);
  });

  test("sum and mean over axes", async () => {
    const x = rand(2 * 3 * 4, 8);
    const cpuSum = (a: Float64Array) => {
      const o = new Float64Array(3);
      for (let i = 0; i < 2; i++)
        for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) o[j] += a[i * 12 + j * 4 + k]!;
      return o;
    };
    const [e1] = await gradcheck(
      ([a]) => T.sum(a!, [0, 2]),
      ([a]) => cpuSum(a!),
      [{ data: x, shape: [2, 3, 4] }],
    );
    const [e2] = await gradcheck(
      ([a]) => T.mean(a!, [0, -1], true),
      ([a]) => cpuSum(a!).map((v) => v / 8),
      [{ data: x, shape: [2, 3, 4] }],
    );
    expect(e1).toBeLessThan(TOL);
    expect(e2).toBeLessThan(TOL);
  });
});

describe("tensors, scopes and memory", () => {
  test("values round-trip and ops compute", async () => {
    const out = T.scope(() =>
      T.keep(
        T.Tensor.from([1, 2, 3, 4], [2, 2])
          .mul(T.Tensor.from([10, 100], [2]))
          .add(1),
      ),
    );
    expect(Array.from(await out.toArray())).toEqual([11, 201, 31, 401]);
    out.dispose();
  });

  test("a scope that throws frees what it made, except kept tensors; so does scopeAsync", async () => {
    const before = T.memoryStats().liveBytes;
    let kept!: T.Tensor;
    expect(() =>
      T.scope(() => {
        kept = T.keep(T.Tensor.full([10], 1));
        T.Tensor.full([1000], 2).mul(3);
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(kept.disposed).toBe(false);
    kept.dispose();
    expect(T.memoryStats().liveBytes).toBe(before);
    await expect(
      T.scopeAsync(async () => {
        T.Tensor.full([1000], 2);
        await Promise.resolve();
        throw new Error("async boom");
      }),
    ).rejects.toThrow("async boom");
    expect(T.memoryStats().liveBytes).toBe(before);
  });

  test("a scope frees what it does not return; use after free is a clear error", async () => {
    const before = T.memoryStats().liveBytes;
    let inner!: T.Tensor;
    const kept = T.scope(() => {
      inner = T.Tensor.full([1000], 2);
      return inner.mul(3);
    });
    expect(inner.disposed).toBe(true);
    expect(() => inner.buffer).toThrow(/disposed tensor/);
    expect(await kept.item().catch((e) => String(e))).toMatch(/1000 elements/);
    expect((await kept.toArray())[999]).toBe(6);
    kept.dispose();
    expect(T.memoryStats().liveBytes).toBe(before);
  });

  test("noGrad records nothing; backward without grad explains itself", () => {
    T.scope(() => {
      const x = T.Tensor.from([1, 2]).requireGrad();
      const y = T.noGrad(() => x.mul(2));
      expect(y.requiresGrad).toBe(false);
      expect(() => T.sum(y).backward()).toThrow(/does not require grad/);
    });
  });

  test("gradients accumulate across backward calls, as in PyTorch", async () => {
    const x = T.Tensor.from([1, 2, 3]).requireGrad();
    T.scope(() => T.sum(x.mul(x)).backward());
    T.scope(() => T.sum(x.mul(x)).backward());
    expect(Array.from(await x.grad!.toArray())).toEqual([4, 8, 12]);
    x.grad!.dispose();
    x.dispose();
  });
});
