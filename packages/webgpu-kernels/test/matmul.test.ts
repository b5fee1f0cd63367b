import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  matmul,
  matmulCpu,
  matmulFlops,
  matmulWgsl,
  planMatmul,
  type MatmulActivation,
  type MatmulOptions,
} from "../src/matmul.ts";
import { KernelRunner } from "../src/runner.ts";
import { download, empty, expectClose, getRunner, random, upload } from "./helpers.ts";

// Each new pipeline costs lavapipe about a second of compilation.
const TOL = 1e-5;

/** Runs `matmul` on seeded data and compares with `matmulCpu`; `c0` is the old C when accumulating. */
async function check(o: MatmulOptions<true>, seed = 1, runner?: KernelRunner) {
  const r = runner ?? (await getRunner());
  const { m, n, k, batch = 1 } = o;
  const a = random(batch * m * k, seed),
    b = random((o.broadcastB ? 1 : batch) * k * n, seed + 1);
  const bias = o.bias ? random(n, seed + 2) : undefined;
  const residual = o.residual ? random(batch * m * n, seed + 3) : undefined;
  const c0 = o.accumulate ? random(batch * m * n, seed + 4) : undefined;
  const out = c0 ? upload(r, c0) : empty(r, batch * m * n);
  matmul(r, upload(r, a), upload(r, b), out, {
    ...o,
    bias: bias && upload(r, bias),
    residual: residual && upload(r, residual),
  });
  const want = matmulCpu(a, b, { ...o, bias, residual }, c0);
  expectClose(
    await download(r, out, batch * m * n),
    want,
    TOL,
    JSON.stringify({ ...o, bias: !!bias, residual: !!residual }),
  );
}

// M×N×K: sizes of 1, 3, 77, 129 off the tile grid, a CLIP-like 77×768×64, and one with every size a multiple of 4.
const SHAPES = [
  [1, 1, 1],
  [3, 77, 129],
  [129, 3, 77],
  [77, 768, 64],
  [68, 100, 20],
] as const;

describe("matmul matches its CPU reference", () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      test(`transA=${transA} transB=${transB} on awkward shapes`, async () => {
        for (const [m, n, k] of SHAPES) await check({ m, n, k, transA, transB });
      });
    }
  }

  test("128×128 tiles, picked when the output fills a GPU", async () => {
    const r = await getRunner();
    // One pipeline (each costs lavapipe seconds): vec4 loads along K for A and along N for B; the scalar and
    // transposed loads share their generator code with the 64×64 tiles tested above.
    const big = { m: 129, n: 132, k: 68, batch: 32 };
    expect(planMatmul(r, big)).toMatchObject({ tile: { tileM: 128, direct: false }, vecA: true, vecB: true });
    await check(big);
  });

  test("an adapter with little workgroup storage: 128×128 tiles with K steps of 8, padded", async () => {
    const gpu = await getRunner();
    const r = new KernelRunner(gpu.device, { ...gpu.limits, maxComputeWorkgroupStorageSize: 16896 });
    const o = { m: 129, n: 132, k: 68, batch: 32, transB: true };
    expect(planMatmul(r, o).tile).toMatchObject({ tileM: 128, tileK: 8, padK: true });
    await check(o, 1, r);
  });

  test("batches, with and without a shared B", async () => {
    await check({ m: 77, n: 65, k: 33, batch: 3 });
    await check({ m: 77, n: 65, k: 33, batch: 3, broadcastB: true, transB: true });
  });

  const epilogues: Record<string, Partial<MatmulOptions<true>>> = {
    alpha: { alpha: -0.75 },
    bias: { bias: true },
    gelu: { activation: "gelu" },
    // The epilogue code is shared by both kernels: the other activations go through the split-K reduction,
    // whose pipelines compile in a fraction of the tiled kernel's time.
    ...Object.fromEntries(
      (["silu", "quickGelu", "relu"] as MatmulActivation[]).map((activation) => [
        `${activation} after split-K`,
        { activation, splitK: 2 },
      ]),
    ),
    residual: { residual: true },
    accumulate: { accumulate: true },
    "all at once": { alpha: 0.5, bias: true, activation: "gelu", residual: true, accumulate: true },
  };
  for (const [name, e] of Object.entries(epilogues)) {
    test(`epilogue: ${name}`, async () => {
      await check({ ...e, m: 77, n: 130, k: 40, batch: 2 });
    });
  }

  test("split-K, forced, applies the epilogue once", async () => {
    await check({
      m: 77,
      n: 68,
      k: 600,
      splitK: 3,
      alpha: 0.5,
      bias: true,
      activation: "silu",
      residual: true,
      accumulate: true,
    });
    // Chunks that do not divide K, transposed operands, a shared B.
    await check({ m: 33, n: 45, k: 301, batch: 2, splitK: 4, transA: true, transB: true, broadcastB: true });
  });

  test("split-K is chosen for a small output over a long K", async () => {
    const r = await getRunner();
    const o = { m: 77, n: 768, k: 3072 }; // CLIP's MLP down-projection of one prompt
    const plan = planMatmul(r, o);
    expect(plan.splits).toBeGreaterThan(1);
    expect(plan.kChunk * plan.splits).toBeGreaterThanOrEqual(o.k);
    await check({ ...o, bias: true, residual: true });
    await check({ m: 3, n: 5, k: 2048, transA: true });
  });

  test("random shapes (property)", async () => {
    const dim = fc.integer({ min: 1, max: 70 });
    const arb = fc.record({
      m: dim,
      n: dim,
      k: dim,
      batch: fc.integer({ min: 1, max: 3 }),
      transA: fc.boolean(),
      transB: fc.boolean(),
      broadcastB: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(arb, (o) => check(o, o.m + o.n)),
      { numRuns: 20, seed: 42 },
    );
  });
});

// Both CPU-driver kernels: the subgroup one (lanes share A by shuffles) where the adapter has subgroups, and the 8×8 one.
for (const subgroups of [true, false]) {
  describe(`the direct kernel for CPU drivers (no workgroup memory), subgroups=${subgroups}`, () => {
    const cpuRunner = async () => {
      const r = await getRunner();
      if (subgroups && !r.subgroups)
        throw new Error("this adapter has no subgroups: the shuffle kernel cannot be tested");
      return new KernelRunner(r.device, r.limits, r.features, { cpu: true, subgroups });
    };

    test("its epilogue is written once, in a loop: 64 inlined copies took lavapipe about a minute to compile", async () => {
      const r = await cpuRunner();
      for (const activation of ["none", "quickGelu"] as const) {
        const code = matmulWgsl(r, { m: 77, n: 768, k: 64, transB: true, activation, bias: true });
        expect(code.match(/store\(/g)).toHaveLength(2); // the definition and one call
        expect(code.includes("subgroupShuffle")).toBe(subgroups);
      }
    });

    test("transposes, batches and a shared B on awkward shapes; every block shape", async () => {
      const r = await cpuRunner();
      expect(planMatmul(r, { m: 77, n: 768, k: 64 }).tile).toMatchObject({ direct: true, shuffle: subgroups });
      // M = 7 and 13 take the subgroup kernel's 8- and 16-row blocks; K off multiples of 8.
      for (const [m, n, k] of [...SHAPES, [7, 300, 33], [13, 50, 70]]) await check({ m, n, k }, m + n, r);
      // Each block shape is a pipeline per transpose (seconds each on lavapipe): the transposes on a few.
      for (const transA of [false, true])
        for (const transB of [false, true]) {
          for (const [m, n, k] of [SHAPES[1], SHAPES[4]]) await check({ m, n, k, transA, transB }, m + n, r);
          await check({ m: 33, n: 45, k: 31, batch: 3, transA, transB, broadcastB: true }, 9, r);
        }
    });

    test("epilogue, directly and after split-K", async () => {
      const r = await cpuRunner();
      const all = { alpha: 0.5, bias: true, activation: "gelu", residual: true, accumulate: true } as const;
      await check({ m: 77, n: 130, k: 40, batch: 2, ...all }, 3, r);
      await check({ m: 77, n: 68, k: 600, splitK: 3, ...all }, 4, r);
      const plan = planMatmul(r, { m: 3, n: 5, k: 2048 });
      expect(plan.splits).toBeGreaterThan(1);
      await check({ m: 3, n: 5, k: 2048, transA: true }, 5, r);
    });

    test("random shapes (property)", async () => {
      const r = await cpuRunner();
      const dim = fc.integer({ min: 1, max: 70 });
      const arb = fc.record({
        m: dim,
        n: dim,
        k: dim,
        batch: fc.integer({ min: 1, max: 3 }),
        transA: fc.boolean(),
        transB: fc.boolean(),
        broadcastB: fc.boolean(),
      });
      await fc.assert(
        fc.asyncProperty(arb, (o) => check(o, o.m + o.n, r)),
        { numRuns: subgroups ? 20 : 10, seed: 43 },
      );
    });
  });
}

describe("matmul plans and guards", () => {
  test("large outputs take 128×128 tiles without split-K; K steps fit workgroup storage", () => {
    const gpu = (storage?: number) => ({
      limits: (storage ? { maxComputeWorkgroupStorageSize: storage } : {}) as Record<string, number>,
      wave: 128,
      cpu: false,
      subgroups: false,
    });
    const big = { m: 4096, n: 4096, k: 4096 };
    const plan = planMatmul(gpu(32768), big);
    expect(plan.tile).toMatchObject({ tileM: 128, tileN: 128, tileK: 16, padK: false });
    expect(plan.splits).toBe(1);
    // An H100 has room to pad the stages against bank conflicts.
    expect(planMatmul(gpu(49152), big).tile).toMatchObject({ tileM: 128, tileK: 16, padK: true });
    expect(planMatmul(gpu(16384), big).tile.tileK).toBe(8); // two stages of 128×8 for A and B: exactly 16 KiB
    expect(planMatmul(gpu(), { ...big, splitK: 5 }).splits).toBe(5);
  });

  test("an undersized buffer is refused", async () => {
    const r = await getRunner();
    expect(() => matmul(r, empty(r, 10), empty(r, 100), empty(r, 100), { m: 10, n: 10, k: 10 })).toThrow(
      "A holds 48 bytes but needs 400",
    );
  });

  test("K = 0 leaves just the epilogue", async () => {
    const r = await getRunner();
    const o = { m: 5, n: 7, k: 0, accumulate: true },
      bias = random(7, 3),
      c0 = random(35, 4);
    const out = upload(r, c0);
    matmul(r, empty(r, 0), empty(r, 0), out, { ...o, bias: upload(r, bias) });
    const none = new Float32Array(0);
    expectClose(await download(r, out, 35), matmulCpu(none, none, { ...o, bias }, c0), TOL);
  });

  test("matmulFlops counts multiply-adds twice", () => {
    expect(matmulFlops({ m: 2, n: 3, k: 4, batch: 5 })).toBe(240);
  });
});
