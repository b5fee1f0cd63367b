import { describe, expect, test } from "bun:test";
import { defineGemm, planGemm } from "../src/gemm.ts";
import { KernelRunner } from "../src/runner.ts";
import { download, empty, expectClose, getRunner, random, upload } from "./helpers.ts";

/**
 * A client that is not matmul: C[m][n] = scale·Σ_k A[k][m]·B[n][k] + offset[m] with A stored K-major and B N-major,
 * so that the hooks, the epilogue input and the client's own uniform all go through the engine's three kernels.
 */
const scaledGemm = defineGemm({
  name: "test-scaled-gemm",
  operands: { x: "f32", y: "f32" },
  epilogueInputs: ["offset"],
  output: "c",
  uniforms: { scale: "f32" },
  aAlongK: () => false,
  bAlongK: () => true,
  loads: () => /* wgsl */ `
    struct ARow { m: u32 }
    fn aRow(z: u32, m: u32) -> ARow { return ARow(m); }
    fn aLoad(r: ARow, k: u32) -> f32 { return x[k * p.M + r.m]; }
    struct BCol { base: u32 }
    fn bCol(z: u32, n: u32) -> BCol { return BCol(n * p.K); }
    fn bLoad(c: BCol, k: u32) -> f32 { return y[c.base + k]; }`,
  store: (s) => /* wgsl */ `
    fn store(z: u32, m: u32, n: u32, v: f32) {
      c[m * p.N + n] = p.scale * v${s.epilogue.includes("offset") ? " + offset[m]" : ""};
    }`,
});

function reference(
  x: Float32Array,
  y: Float32Array,
  M: number,
  N: number,
  K: number,
  scale: number,
  offset?: Float32Array,
) {
  const c = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[k * M + m]! * y[n * K + k]!;
      c[m * N + n] = scale * s + (offset ? offset[m]! : 0);
    }
  return c;
}

describe("the GEMM engine with a client of its own", () => {
  const runners = async () => {
    const r = await getRunner();
    return [
      ["tiled", r],
      ["direct", new KernelRunner(r.device, r.limits, r.features, { cpu: true, subgroups: false })],
      ...(r.subgroups ? [["subgroup", new KernelRunner(r.device, r.limits, r.features, { cpu: true })] as const] : []),
    ] as const;
  };

  test("every kernel, straight and through the one split-K reducer, with and without the epilogue input", async () => {
    const [M, N, K] = [37, 70, 530];
    const x = random(K * M, 1),
      y = random(N * K, 2),
      offset = random(M, 3);
    for (const [name, r] of await runners()) {
      // Each (kernel, input set) is a pipeline of seconds on lavapipe: no offset only once.
      for (const splitK of [1, 3]) {
        for (const withOffset of name === "direct" && splitK === 1 ? [false, true] : [true]) {
          const shape = { M, N, K, batches: 1 };
          const plan = planGemm(r, shape, { splitK });
          expect(plan.splits).toBe(splitK);
          const c = empty(r, M * N);
          const before = r.dispatches;
          scaledGemm.run(r, {}, shape, plan, {
            operands: { x: upload(r, x), y: upload(r, y) },
            epilogue: withOffset ? { offset: upload(r, offset) } : {},
            output: c,
            uniforms: { scale: -0.5 },
          });
          expect(r.dispatches - before).toBe(splitK === 1 ? 1 : 2);
          const want = reference(x, y, M, N, K, -0.5, withOffset ? offset : undefined);
          expectClose(await download(r, c, M * N), want, 1e-5, `${name} splitK=${splitK} offset=${withOffset}`);
        }
      }
    }
  });

  test("only the epilogue inputs in use are bound: each set is its own kernel", () => {
    const spec = {
      tile: planGemm({ limits: {}, wave: 16, cpu: true, subgroups: true }, { M: 5, N: 5, K: 5, batches: 1 }).tile,
      vecA: false,
      vecB: false,
    };
    expect(scaledGemm.wgsl({ ...spec, epilogue: [] })).not.toContain("offset");
    expect(scaledGemm.wgsl({ ...spec, epilogue: ["offset"] })).toContain("var<storage, read> offset: array<f32>;");
  });

  test("the CPU kernels' blocks follow the product's shape", () => {
    const cpu = (subgroups: boolean) => ({ limits: {}, wave: 16, cpu: true, subgroups });
    const tile = (M: number, N: number, subgroups = true) => planGemm(cpu(subgroups), { M, N, K: 64, batches: 1 }).tile;
    expect(tile(512, 512)).toMatchObject({ shuffle: true, microM: 24, microN: 4, tileM: 24, tileN: 256 });
    expect(tile(3, 40)).toMatchObject({ shuffle: true, microM: 4, microN: 1 });
    expect(tile(12, 100)).toMatchObject({ microM: 16, microN: 2 });
    expect(tile(512, 512, false)).toMatchObject({ shuffle: false, direct: true, tileM: 64, tileN: 64 });
  });

  test("a client uniform with an engine name is refused", () => {
    expect(() =>
      defineGemm({
        name: "test-bad",
        operands: { x: "f32" },
        epilogueInputs: [],
        output: "c",
        uniforms: { K: "u32" },
        aAlongK: () => true,
        bAlongK: () => true,
        loads: () => "",
        store: () => "",
      }),
    ).toThrow('uniform "K" is the engine\'s own');
  });
});
