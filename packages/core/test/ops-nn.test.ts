import { beforeAll, describe, expect, test } from "bun:test";
import * as K from "@textcraftor/webgpu-kernels";
import * as T from "../src/index.ts";
import { gradcheck, rand } from "./gradcheck.ts";

beforeAll(async () => {
  await T.initRuntime();
});
const TOL = 2e-3;
const expectAll = (errs: number[]) => {
  for (const e of errs) expect(e).toBeLessThan(TOL);
};

/** Plain float64 GEMM for the references below: C = op(A)·op(B) per batch. */
function gemm(
  a: Float64Array,
  b: Float64Array,
  batch: number,
  m: number,
  n: number,
  k: number,
  transA = false,
  transB = false,
) {
  const c = new Float64Array(batch * m * n);
  for (let z = 0; z < batch; z++)
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++)
          s += a[z * m * k + (transA ? p * m + i : i * k + p)]! * b[z * k * n + (transB ? j * k + p : p * n + j)]!;
        c[z * m * n + i * n + j] = s;
      }
  return c;
}

describe("matrix products", () => {
  for (const [transA, transB] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ]) {
    test(`bmm transA=${transA} transB=${transB}`, async () => {
      const [batch, m, n, k] = [2, 3, 5, 7];
      expectAll(
        await gradcheck(
          ([a, b]) => T.bmm(a!, b!, { transA, transB, alpha: 0.5 }),
          ([a, b]) => gemm(a!, b!, batch, m, n, k, transA, transB).map((v) => v * 0.5),
          [
            { data: rand(batch * m * k, 1), shape: transA ? [batch, k, m] : [batch, m, k] },
            { data: rand(batch * k * n, 2), shape: transB ? [batch, n, k] : [batch, k, n] },
          ],
        ),
      );
    });
  }

  test("linear with bias and activation (weights shared over leading dims)", async () => {
    const [rows, inF, outF] = [6, 5, 4];
    const cpu = ([x, w, b]: Float64Array[]) => {
      const y = gemm(x!, w!, 1, rows, outF, inF, false, true);
      return y.map((v, i) => {
        const z = v + b![i % outF]!;
        return z / (1 + Math.exp(-z));
      });
    };
    expectAll(
      await gradcheck(([x, w, b]) => T.linear(x!, w!, b!, "silu"), cpu, [
        { data: rand(rows * inF, 3), shape: [2, 3, inF] },
        { data: rand(outF * inF, 4), shape: [outF, inF] },
        { data: rand(outF, 5), shape: [outF] },
      ]),
    );
  });

  test("linear without autograd fuses the epilogue and agrees with the unfused path", async () => {
    const x = T.Tensor.from(rand(3 * 8, 6), [3, 8]),
      w = T.Tensor.from(rand(4 * 8, 7), [4, 8]),
      b = T.Tensor.from(rand(4, 8), [4]);
    const fused = await T.noGrad(() => T.linear(x, w, b, "gelu")).toArray();
    const unfused = await T.gelu(T.linear(x, w, b)).toArray();
    expect(K.matmulFlops({ m: 3, n: 4, k: 8 })).toBe(192);
    for (let i = 0; i < 12; i++) expect(fused[i]).toBeCloseTo(unfused[i]!, 5);
  });
});

describe("convolution and resampling", () => {
  for (const [k, stride, padding] of [
    [3, 1, 1],
    [3, 2, [0, 1, 0, 1]],
    [1, 1, 0],
  ] as const) {
    test(`conv2d k=${k} stride=${stride} padding=${padding}`, async () => {
      const shape: K.Conv2dShape = {
        batch: 2,
        inChannels: 3,
        outChannels: 4,
        height: 5,
        width: 6,
        kernelH: k,
        kernelW: k,
        strideH: stride,
        strideW: stride,
        padH: typeof padding === "number" ? padding : padding[0],
        padW: typeof padding === "number" ? padding : padding[2],
        padBottom: typeof padding === "number" ? padding : padding[1],
        padRight: typeof padding === "number" ? padding : padding[3],
      };
      expectAll(
        await gradcheck(
          ([x, w, b]) => T.conv2d(x!, w!, b!, { stride, padding: padding as number }),
          ([x, w, b]) => K.conv2dCpu(x!, w!, shape, b!),
          [
            { data: rand(2 * 3 * 5 * 6, 1), shape: [2, 3, 5, 6] },
            { data: rand(4 * 3 * k * k, 2), shape: [4, 3, k, k] },
            { data: rand(4, 3), shape: [4] },
          ],
        ),
      );
    });
  }

  test("nearest ×2 upsampling and adaptive average pooling", async () => {
    const o = { batch: 1, channels: 2, height: 3, width: 5 };
    expectAll(
      await gradcheck(
        ([x]) => T.upsampleNearest2x(x!),
        ([x]) => K.upsampleNearest2xCpu(x!, o),
        [{ data: rand(30, 1), shape: [1, 2, 3, 5] }],
      ),
    );
    const p = { batch: 1, channels: 2, height: 7, width: 9, outH: 3, outW: 4 };
    expectAll(
      await gradcheck(
        ([x]) => T.adaptiveAvgPool2d(x!, 3, 4),
        ([x]) => K.adaptiveAvgPool2dCpu(x!, p),
        [{ data: rand(126, 2), shape: [1, 2, 7, 9] }],
      ),
    );
  });
});

describe("normalisation, softmax, attention", () => {
  test("group norm with and without fused SiLU", async () => {
    for (const silu of [false, true]) {
      const o = { batch: 2, channels: 4, spatial: 6, groups: 2, eps: 1e-5, silu };
      expectAll(
        await gradcheck(
          ([x, w, b]) => T.groupNorm(x!, 2, w!, b!, 1e-5, { silu }),
          ([x, w, b]) => K.groupNormCpu(x!, w!, b!, o).out,
          [
            { data: rand(48, 1, 2), shape: [2, 4, 2, 3] },
            { data: rand(4, 2), shape: [4] },
            { data: rand(4, 3), shape: [4] },
          ],
        ),
      );
    }
  });

  test("layer norm and softmax", async () => {
    expectAll(
      await gradcheck(
        ([x, w, b]) => T.layerNorm(x!, w!, b!),
        ([x, w, b]) => K.layerNormCpu(x!, w!, b!, { rows: 3, cols: 7, eps: 1e-5 }).out,
        [
          { data: rand(21, 1, 2), shape: [3, 7] },
          { data: rand(7, 2), shape: [7] },
          { data: rand(7, 3), shape: [7] },
        ],
      ),
    );
    expectAll(
      await gradcheck(
        ([x]) => T.softmax(x!),
        ([x]) => K.softmaxCpu(x!, { rows: 3, cols: 7 }),
        [{ data: rand(21, 4, 3), shape: [3, 7] }],
      ),
    );
  });

  for (const causal of [false, true]) {
    test(`scaled-dot-product attention causal=${causal}`, async () => {
      const o = { bh: 2, lq: 5, lk: 5, d: 4, dv: 3, causal };
      expectAll(
        await gradcheck(
          ([q, k, v]) => T.scaledDotProductAttention(q!, k!, v!, { causal }),
          ([q, k, v]) => K.attentionCpu(q!, k!, v!, o).out,
          [
            { data: rand(40, 1), shape: [2, 5, 4] },
            { data: rand(40, 2), shape: [2, 5, 4] },
            { data: rand(30, 3), shape: [2, 5, 3] },
          ],
        ),
      );
    });
  }
});

describe("shape ops and embedding", () => {
  test("permute, slice, concat and chunk", async () => {
    const cpuPermute = (x: Float64Array) => {
      const o = new Float64Array(24);
      for (let i = 0; i < 2; i++)
        for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) o[k * 6 + i * 3 + j] = x[i * 12 + j * 4 + k]!;
      return o;
    };
    expectAll(
      await gradcheck(
        ([x]) => T.permute(x!, [2, 0, 1]),
        ([x]) => cpuPermute(x!),
        [{ data: rand(24, 1), shape: [2, 3, 4] }],
      ),
    );
    const cpuCat = ([a, b]: Float64Array[]) => {
      const o: number[] = [];
      for (let i = 0; i < 2; i++) o.push(...a!.slice(i * 3, i * 3 + 3), ...b!.slice(i * 2, i * 2 + 2));
      return o;
    };
    expectAll(
      await gradcheck(([a, b]) => T.concat([a!, b!], 1), cpuCat, [
        { data: rand(6, 2), shape: [2, 3] },
        { data: rand(4, 3), shape: [2, 2] },
      ]),
    );
    const [, second] = T.chunk(T.Tensor.from([0, 1, 2, 3, 4, 5], [2, 3]), 3, 1);
    expect(Array.from(await second!.toArray())).toEqual([1, 4]);
  });

  test("embedding gathers rows and sums repeated ids in the gradient", async () => {
    const ids = [3, 1, 3, 0];
    const cpu = ([t]: Float64Array[]) => ids.flatMap((id) => Array.from(t!.slice(id * 2, id * 2 + 2)));
    expectAll(await gradcheck(([t]) => T.embedding(t!, ids, [2, 2]), cpu, [{ data: rand(10, 1), shape: [5, 2] }]));
    expect(() => T.scope(() => T.embedding(T.Tensor.zeros([5, 2]), [5]))).toThrow(/outside the table/);
  });
});

describe("gradient checkpointing", () => {
  test("gives the same gradients as the plain graph, including for captured parameters", async () => {
    const lin = new T.Linear(4, 4, { rng: new T.Rng(3) });
    const x0 = rand(8, 9);
    const grads = async (useCheckpoint: boolean) => {
      const out = await T.scopeAsync(async () => {
        const x = T.Tensor.from(Float32Array.from(x0), [2, 4]).requireGrad();
        const block = (h: T.Tensor) => T.silu(lin.forward(h)).mul(h);
        const y = useCheckpoint ? T.checkpoint(block, x) : block(x);
        T.sum(y.mul(y)).backward();
        return [await x.grad!.toArray(), await lin.weight.grad!.toArray()];
      });
      lin.weight.grad?.dispose();
      lin.weight.grad = null;
      lin.bias!.grad?.dispose();
      lin.bias!.grad = null;
      return out;
    };
    const [plainX, plainW] = await grads(false);
    const [ckX, ckW] = await grads(true);
    expect(Array.from(ckX!)).toEqual(Array.from(plainX!));
    expect(Array.from(ckW!)).toEqual(Array.from(plainW!));
    lin.dispose();
  });
});

describe("memory", () => {
  test("1,000 forward+backward steps of a small MLP end with the live bytes of step 1", async () => {
    const l1 = new T.Linear(16, 32, { rng: new T.Rng(1) }),
      l2 = new T.Linear(32, 1, { rng: new T.Rng(2) });
    const opt = new T.AdamW([...l1.parameters(), ...l2.parameters()], { lr: 1e-3 });
    const x = T.Tensor.from(rand(8 * 16, 4), [8, 16]);
    const step = () =>
      T.scope(() => {
        opt.zeroGrad();
        T.mean(T.square(l2.forward(T.gelu(l1.forward(x))))).backward();
        opt.update();
      });
    step();
    T.runtime().runner.flush();
    const afterFirst = T.memoryStats().liveBytes;
    const lossNow = async () => {
      const t = T.noGrad(() => T.scope(() => T.keep(T.mean(T.square(l2.forward(T.gelu(l1.forward(x))))))));
      const v = await t.item();
      t.dispose();
      return v;
    };
    const loss0 = await lossNow();
    for (let i = 1; i < 1000; i++) step();
    expect(T.memoryStats().liveBytes).toBe(afterFirst);
    const loss1 = await lossNow();
    expect(loss1).toBeLessThan(loss0 * 0.5); // the optimiser actually trains
    opt.dispose();
    l1.dispose();
    l2.dispose();
    x.dispose();
  });
});

describe("attention with wide heads", () => {
  test("head dims above the fused kernels' 160 (the VAE's 512-wide head) take the unfused path, with gradients", async () => {
    const o = { bh: 1, lq: 6, lk: 5, d: 168, dv: 164 };
    const errs = await gradcheck(
      ([q, k, v]) => T.scaledDotProductAttention(q!, k!, v!),
      ([q, k, v]) => K.attentionCpu(q!, k!, v!, o).out,
      [
        { data: rand(6 * 168, 1, 0.3), shape: [1, 6, 168] },
        { data: rand(5 * 168, 2, 0.3), shape: [1, 5, 168] },
        { data: rand(5 * 164, 3), shape: [1, 5, 164] },
      ],
    );
    for (const e of errs) expect(e).toBeLessThan(TOL);
  });
});
