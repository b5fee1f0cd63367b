import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  conv2d,
  conv2dBiasGrad,
  conv2dBiasGradCpu,
  conv2dCpu,
  conv2dGeometry,
  conv2dInputGrad,
  conv2dInputGradCpu,
  conv2dOutputSize,
  conv2dWeightGrad,
  conv2dWeightGradCpu,
  type Conv2dShape,
} from "../src/conv2d.ts";
import { KernelRunner } from "../src/runner.ts";
import { download, empty, expectClose, getRunner, random, upload } from "./helpers.ts";

// A cold lavapipe compiles each conv pipeline in about a second, and a test may meet five new ones
// (bunfig.toml's [test] timeout is not a setting Bun reads).

const sizes = (o: Conv2dShape) => {
  const g = conv2dGeometry(o);
  return { x: g.batch * g.cin * g.h * g.w, w: g.cout * g.cin * g.kh * g.kw, y: g.batch * g.cout * g.hOut * g.wOut };
};
const name = (o: Conv2dShape) =>
  `${o.batch}×${o.inChannels}×${o.height}×${o.width} k${o.kernelH}×${o.kernelW} s${o.strideH ?? 1}×${o.strideW ?? 1} p(${o.padH ?? 0},${o.padBottom ?? o.padH ?? 0},${o.padW ?? 0},${o.padRight ?? o.padW ?? 0}) → ${o.outChannels}`;

/**
 * 1×1 and 3×3, stride 1 and 2, padding 0/1 and the VAE encoder's asymmetric (0,1,0,1), and a 1×3 kernel
 * with strides (2, 1) so that no height/width mix-up can hide; M, N and K off the 64×64×16 tile. Kernel
 * size and stride are baked into each pipeline, so the cases share five of them.
 */
const CASES: Conv2dShape[] = [
  { batch: 2, inChannels: 5, outChannels: 17, height: 7, width: 7, kernelH: 1, kernelW: 1 },
  { batch: 1, inChannels: 32, outChannels: 8, height: 13, width: 13, kernelH: 1, kernelW: 1 },
  { batch: 1, inChannels: 17, outChannels: 70, height: 8, width: 13, kernelH: 1, kernelW: 1 },
  { batch: 2, inChannels: 3, outChannels: 32, height: 13, width: 13, kernelH: 3, kernelW: 3, padH: 1, padW: 1 },
  { batch: 1, inChannels: 4, outChannels: 1, height: 3, width: 3, kernelH: 3, kernelW: 3 },
  { batch: 2, inChannels: 32, outChannels: 3, height: 1, width: 1, kernelH: 3, kernelW: 3, padH: 1, padW: 1 },
  {
    batch: 1,
    inChannels: 17,
    outChannels: 5,
    height: 8,
    width: 8,
    kernelH: 3,
    kernelW: 3,
    strideH: 2,
    strideW: 2,
    padH: 1,
    padW: 1,
  },
  {
    batch: 2,
    inChannels: 8,
    outChannels: 4,
    height: 13,
    width: 13,
    kernelH: 3,
    kernelW: 3,
    strideH: 2,
    strideW: 2,
    padBottom: 1,
    padRight: 1,
  },
  {
    batch: 1,
    inChannels: 1,
    outChannels: 1,
    height: 7,
    width: 7,
    kernelH: 3,
    kernelW: 3,
    strideH: 2,
    strideW: 2,
    padH: 1,
    padW: 1,
  },
  { batch: 2, inChannels: 4, outChannels: 70, height: 7, width: 8, kernelH: 3, kernelW: 3, padH: 1, padW: 1 },
  {
    batch: 2,
    inChannels: 3,
    outChannels: 5,
    height: 8,
    width: 7,
    kernelH: 1,
    kernelW: 3,
    strideH: 2,
    strideW: 1,
    padW: 1,
    padRight: 0,
  },
];

interface Inputs {
  x: Float32Array;
  w: Float32Array;
  dy: Float32Array;
}
const inputs = (o: Conv2dShape, seed: number): Inputs => {
  const n = sizes(o);
  return { x: random(n.x, seed), w: random(n.w, seed + 1, 0.5), dy: random(n.y, seed + 2) };
};

async function checkForward(r: KernelRunner, o: Conv2dShape, { x, w }: Inputs) {
  const out = empty(r, sizes(o).y);
  conv2d(r, upload(r, x), upload(r, w), out, o);
  expectClose(await download(r, out, sizes(o).y), conv2dCpu(x, w, o), 1e-5, `conv2d ${name(o)}`);
}

async function checkInputGrad(r: KernelRunner, o: Conv2dShape, { w, dy }: Inputs) {
  const dx = empty(r, sizes(o).x);
  conv2dInputGrad(r, upload(r, dy), upload(r, w), dx, o);
  expectClose(await download(r, dx, sizes(o).x), conv2dInputGradCpu(dy, w, o), 1e-5, `input grad ${name(o)}`);
}

async function checkWeightGrad(r: KernelRunner, o: Conv2dShape, { x, dy }: Inputs) {
  const dw = empty(r, sizes(o).w);
  conv2dWeightGrad(r, upload(r, x), upload(r, dy), dw, o);
  expectClose(await download(r, dw, sizes(o).w), conv2dWeightGradCpu(x, dy, o), 1e-5, `weight grad ${name(o)}`);
}

describe("CPU references", () => {
  test("output size follows floor((H + pads − k) / stride) + 1", () => {
    expect(conv2dOutputSize({ ...CASES[7]! })).toEqual({ height: 6, width: 6 });
    expect(
      conv2dOutputSize({
        batch: 1,
        inChannels: 1,
        outChannels: 1,
        height: 512,
        width: 512,
        kernelH: 3,
        kernelW: 3,
        strideH: 2,
        strideW: 2,
        padBottom: 1,
        padRight: 1,
      }),
    ).toEqual({ height: 256, width: 256 });
    expect(() =>
      conv2dOutputSize({ batch: 1, inChannels: 1, outChannels: 1, height: 2, width: 5, kernelH: 3, kernelW: 3 }),
    ).toThrow("does not fit a 2×5 input");
  });

  // The loss Σ dy·conv(x, w, b) is linear in each of x, w and b, so central differences are exact up to rounding.
  const tiny: Conv2dShape[] = [
    {
      batch: 2,
      inChannels: 2,
      outChannels: 3,
      height: 5,
      width: 6,
      kernelH: 3,
      kernelW: 3,
      strideH: 2,
      strideW: 2,
      padBottom: 1,
      padRight: 1,
    },
    { batch: 1, inChannels: 2, outChannels: 2, height: 4, width: 5, kernelH: 3, kernelW: 3, padH: 1, padW: 1 },
  ];
  for (const small of tiny) {
    test(`gradients match finite differences of conv2dCpu (${name(small)})`, () => {
      const n = sizes(small);
      const x = Float64Array.from(random(n.x, 11)),
        w = Float64Array.from(random(n.w, 12)),
        dy = Float64Array.from(random(n.y, 13));
      const b = Float64Array.from(random(small.outChannels, 14));
      const loss = () => conv2dCpu(x, w, small, b).reduce((s, v, i) => s + v * dy[i]!, 0);
      const numeric = (t: Float64Array) =>
        Array.from(t, (_, i) => {
          const v = t[i]!,
            h = 1e-4;
          t[i] = v + h;
          const up = loss();
          t[i] = v - h;
          const down = loss();
          t[i] = v;
          return (up - down) / (2 * h);
        });
      expectClose(conv2dInputGradCpu(dy, w, small), numeric(x), 1e-9, "dx");
      expectClose(conv2dWeightGradCpu(x, dy, small), numeric(w), 1e-9, "dw");
      expectClose(conv2dBiasGradCpu(dy, small), numeric(b), 1e-9, "db");
    });
  }
});

describe("conv2d forward", () => {
  test("awkward shapes", async () => {
    const r = await getRunner();
    for (const [i, o] of CASES.entries()) await checkForward(r, o, inputs(o, 10 * i));
  });

  test("bias, residual and accumulate fused into the epilogue", async () => {
    const r = await getRunner();
    for (const [o, epilogue] of [
      [CASES[0]!, "bias"],
      [CASES[7]!, "all"],
    ] as const) {
      const { x, w } = inputs(o, 3);
      const n = sizes(o).y;
      const bias = random(o.outChannels, 4),
        residual = random(n, 5),
        prior = random(n, 6);
      const out = epilogue === "bias" ? empty(r, n) : upload(r, prior);
      const bb = upload(r, bias);
      conv2d(
        r,
        upload(r, x),
        upload(r, w),
        out,
        epilogue === "bias" ? { ...o, bias: bb } : { ...o, bias: bb, residual: upload(r, residual), accumulate: true },
      );
      const expected =
        epilogue === "bias"
          ? conv2dCpu(x, w, o, bias)
          : conv2dCpu(x, w, o, bias, residual).map((v, i) => v + prior[i]!);
      expectClose(await download(r, out, n), expected, 1e-5, `${epilogue} ${name(o)}`);
    }
  });
});

describe("conv2d gradients", () => {
  test("input grad on awkward shapes", async () => {
    const r = await getRunner();
    for (const [i, o] of CASES.entries()) await checkInputGrad(r, o, inputs(o, 10 * i));
  });

  test("weight grad on awkward shapes", async () => {
    const r = await getRunner();
    for (const [i, o] of CASES.entries()) await checkWeightGrad(r, o, inputs(o, 10 * i));
  });

  test("weight grad with K split across workgroups, accumulating", async () => {
    const r = await getRunner();
    const o: Conv2dShape = {
      batch: 2,
      inChannels: 3,
      outChannels: 8,
      height: 32,
      width: 31,
      kernelH: 3,
      kernelW: 3,
      padH: 1,
      padW: 1,
    };
    const { x, dy } = inputs(o, 21);
    const prior = random(sizes(o).w, 22);
    const dw = upload(r, prior);
    const before = r.dispatches;
    conv2dWeightGrad(r, upload(r, x), upload(r, dy), dw, { ...o, accumulate: true });
    expect(r.dispatches - before).toBe(2); // the GEMM over K slices, then the reduce
    expectClose(
      await download(r, dw, sizes(o).w),
      conv2dWeightGradCpu(x, dy, o).map((v, i) => v + prior[i]!),
      1e-5,
      "split-K dw",
    );
  });

  test("input grad and bias grad accumulate", async () => {
    const r = await getRunner();
    const o = CASES[6]!;
    const { w, dy } = inputs(o, 31);
    const priorX = random(sizes(o).x, 32),
      priorB = random(o.outChannels, 33);
    const dx = upload(r, priorX),
      db = upload(r, priorB),
      dyb = upload(r, dy);
    conv2dInputGrad(r, dyb, upload(r, w), dx, { ...o, accumulate: true });
    conv2dBiasGrad(r, dyb, db, { ...o, accumulate: true });
    expectClose(
      await download(r, dx, sizes(o).x),
      conv2dInputGradCpu(dy, w, o).map((v, i) => v + priorX[i]!),
      1e-5,
      "dx",
    );
    expectClose(
      await download(r, db, o.outChannels),
      conv2dBiasGradCpu(dy, o).map((v, i) => v + priorB[i]!),
      1e-5,
      "db",
    );
  });

  test("bias grad", async () => {
    const r = await getRunner();
    for (const o of [CASES[3]!, { ...CASES[1]!, batch: 2, height: 23, width: 29 }]) {
      const { dy } = inputs(o, 41);
      const db = empty(r, o.outChannels);
      conv2dBiasGrad(r, upload(r, dy), db, o);
      expectClose(await download(r, db, o.outChannels), conv2dBiasGradCpu(dy, o), 1e-5, `db ${name(o)}`);
    }
  });
});

test("random small convolutions, forward and both gradients (property)", async () => {
  const r = await getRunner();
  // Kernel and stride from the baked variants above (new ones would each cost a compile); sizes and padding free.
  const shape = fc
    .record({
      batch: fc.integer({ min: 1, max: 2 }),
      inChannels: fc.integer({ min: 1, max: 9 }),
      outChannels: fc.integer({ min: 1, max: 9 }),
      height: fc.integer({ min: 1, max: 9 }),
      width: fc.integer({ min: 1, max: 9 }),
      kernel: fc.constantFrom(1, 3),
      stride: fc.constantFrom(1, 2),
      pads: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 4, maxLength: 4 }),
    })
    .map(
      ({ kernel, stride, pads: [padH, padBottom, padW, padRight], ...o }): Conv2dShape => ({
        ...o,
        kernelH: kernel,
        kernelW: kernel,
        strideH: stride,
        strideW: stride,
        padH,
        padBottom,
        padW,
        padRight,
      }),
    )
    .filter((o) => o.height + o.padH! + o.padBottom! >= o.kernelH && o.width + o.padW! + o.padRight! >= o.kernelW);
  let seed = 100;
  await fc.assert(
    fc.asyncProperty(shape, async (o) => {
      const data = inputs(o, seed++);
      await checkForward(r, o, data);
      await checkInputGrad(r, o, data);
      await checkWeightGrad(r, o, data);
    }),
    { numRuns: 15, seed: 7 },
  );
});

// Both CPU-driver kernels: the subgroup one where the adapter has subgroups, and the 8×8 one.
for (const subgroups of [true, false])
  describe(`the direct GEMM for CPU drivers (no workgroup memory), subgroups=${subgroups}`, () => {
    const cpuRunner = async () => {
      const r = await getRunner();
      if (subgroups && !r.subgroups)
        throw new Error("this adapter has no subgroups: the shuffle kernel cannot be tested");
      return new KernelRunner(r.device, r.limits, r.features, { cpu: true, subgroups });
    };

    test("forward, input grad and weight grad on awkward shapes", async () => {
      const r = await cpuRunner();
      for (const [i, o] of CASES.entries()) {
        const data = inputs(o, 10 * i + 5);
        await checkForward(r, o, data);
        await checkInputGrad(r, o, data);
        await checkWeightGrad(r, o, data);
      }
    });

    test("weight grad with K split, accumulating; fused epilogue", async () => {
      const r = await cpuRunner();
      const o: Conv2dShape = {
        batch: 2,
        inChannels: 3,
        outChannels: 8,
        height: 32,
        width: 31,
        kernelH: 3,
        kernelW: 3,
        padH: 1,
        padW: 1,
      };
      const { x, w, dy } = inputs(o, 23);
      const prior = random(sizes(o).w, 24);
      const dw = upload(r, prior);
      const before = r.dispatches;
      conv2dWeightGrad(r, upload(r, x), upload(r, dy), dw, { ...o, accumulate: true });
      expect(r.dispatches - before).toBe(2);
      expectClose(
        await download(r, dw, sizes(o).w),
        conv2dWeightGradCpu(x, dy, o).map((v, i) => v + prior[i]!),
        1e-5,
        "split-K dw",
      );
      const n = sizes(o).y,
        bias = random(o.outChannels, 25),
        residual = random(n, 26),
        old = random(n, 27);
      const out = upload(r, old);
      conv2d(r, upload(r, x), upload(r, w), out, {
        ...o,
        bias: upload(r, bias),
        residual: upload(r, residual),
        accumulate: true,
      });
      expectClose(
        await download(r, out, n),
        conv2dCpu(x, w, o, bias, residual).map((v, i) => v + old[i]!),
        1e-5,
        "epilogue",
      );
    });
  });
