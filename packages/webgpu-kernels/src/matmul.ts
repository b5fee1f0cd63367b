/**
 * Batched matrix multiplication C = alpha·op(A)·op(B) with a fused epilogue (bias, activation, residual,
 * accumulate), and its CPU reference. The kernels are the GEMM engine's (gemm.ts): this file says how A and B
 * are laid out and what the epilogue does. Only the activation and the set of epilogue buffers are baked into a
 * pipeline; alpha and accumulate are uniforms, which keeps pipelines (each a second or more of compilation on
 * lavapipe) few.
 */
import { ERF_WGSL, UNARY } from "./elementwise.ts";
import { defineGemm, planGemm, type GemmPlan } from "./gemm.ts";
import type { KernelRunner } from "./runner.ts";

export type MatmulActivation = "none" | "silu" | "gelu" | "quickGelu" | "relu";

/** Shapes and epilogue of one batched product; `Buf` is GPUBuffer for the kernel and Float32Array for the CPU reference. */
export interface MatmulOptions<Buf = GPUBuffer> {
  m: number;
  n: number;
  k: number;
  batch?: number;
  /** A is stored [batch, K, M] instead of [batch, M, K]. */
  transA?: boolean;
  /** B is stored [batch, N, K] instead of [batch, K, N]. */
  transB?: boolean;
  alpha?: number;
  /** Length N, added to every row. */
  bias?: Buf;
  activation?: MatmulActivation;
  /** Same shape as C, added after the activation; not `out` itself (for that, use `accumulate`). */
  residual?: Buf;
  /** B has batch 1 and is shared by every batch (a Linear layer's weight). */
  broadcastB?: boolean;
  /** C += result (gradient accumulation). */
  accumulate?: boolean;
  /** Number of K chunks; 1 turns split-K off. Chosen from the shape when absent. */
  splitK?: number;
}

/** What a matmul bakes into its pipelines besides the engine's tile. */
type MatmulSpec = { transA: boolean; transB: boolean; activation: MatmulActivation };

export const matmulFlops = (o: MatmulOptions<unknown>) => 2 * (o.batch ?? 1) * o.m * o.n * o.k;

/**
 * A is [z][M][K] (or [z][K][M] transposed), B is [z or shared][K][N] (or [..][N][K]); `strideB` is 0 for a
 * shared B. The vec4 hooks read four consecutive elements along the contiguous dimension.
 */
const matmulGemm = defineGemm({
  name: "matmul",
  operands: {
    a: (s: MatmulSpec & { vecA: boolean }) => (s.vecA ? "vec4<f32>" : "f32"),
    b: (s: MatmulSpec & { vecB: boolean }) => (s.vecB ? "vec4<f32>" : "f32"),
  },
  epilogueInputs: ["bias", "residual"],
  output: "out",
  uniforms: { strideB: "u32", alpha: "f32", accumulate: "u32" },
  aAlongK: (s: MatmulSpec) => !s.transA,
  bAlongK: (s: MatmulSpec) => s.transB,
  loads: (s) => {
    const a = s.transA
      ? { base: "z * p.M * p.K + m", at: "r.base + k * p.M" }
      : { base: "z * p.M * p.K + m * p.K", at: "r.base + k" };
    const b = s.transB
      ? { base: "z * p.strideB + n * p.K", at: "c.base + k" }
      : { base: "z * p.strideB + n", at: "c.base + k * p.N" };
    return /* wgsl */ `
      struct ARow { base: u32 }
      fn aRow(z: u32, m: u32) -> ARow { return ARow(${a.base}); }
      ${s.vecA ? `fn aLoad4(r: ARow, k: u32) -> vec4<f32> { return a[(${a.at}) / 4u]; }` : `fn aLoad(r: ARow, k: u32) -> f32 { return a[${a.at}]; }`}
      struct BCol { base: u32 }
      fn bCol(z: u32, n: u32) -> BCol { return BCol(${b.base}); }
      ${s.vecB ? `fn bLoad4(c: BCol, k: u32) -> vec4<f32> { return b[(${b.at}) / 4u]; }` : `fn bLoad(c: BCol, k: u32) -> f32 { return b[${b.at}]; }`}`;
  },
  // alpha·acc → + bias → activation → + residual → + old C.
  store: (s) => {
    const act = s.activation === "none" ? "" : `{ let x = v; v = ${UNARY[s.activation].wgsl}; }`;
    return /* wgsl */ `
      ${s.activation === "gelu" ? ERF_WGSL : ""}
      fn store(z: u32, m: u32, n: u32, acc: f32) {
        let i = (z * p.M + m) * p.N + n;
        var v = p.alpha * acc;
        ${s.epilogue.includes("bias") ? "v += bias[n];" : ""}
        ${act}
        ${s.epilogue.includes("residual") ? "v += residual[i];" : ""}
        if (p.accumulate != 0u) { v += out[i]; }
        out[i] = v;
      }`;
  },
});

/** The kernel and split-K for a product on `r`'s device (vec4 loads where the contiguous dimensions allow). */
export function planMatmul(
  r: Pick<KernelRunner, "limits" | "wave" | "cpu" | "subgroups">,
  o: MatmulOptions<unknown>,
): GemmPlan {
  const { m, n, k, batch = 1, transA = false, transB = false } = o;
  return planGemm(
    r,
    { M: m, N: n, K: k, batches: batch },
    { vecA: (transA ? m : k) % 4 === 0, vecB: (transB ? k : n) % 4 === 0, splitK: o.splitK },
  );
}

/** The main kernel's WGSL for `o` on `r`'s device (for inspection). */
export function matmulWgsl(
  r: Pick<KernelRunner, "limits" | "wave" | "cpu" | "subgroups">,
  o: MatmulOptions<unknown>,
): string {
  const plan = planMatmul(r, o);
  return matmulGemm.wgsl({
    ...matmulSpec(o),
    tile: plan.tile,
    vecA: plan.vecA,
    vecB: plan.vecB,
    epilogue: [...(o.bias ? ["bias"] : []), ...(o.residual ? ["residual"] : [])],
  });
}

const matmulSpec = (o: MatmulOptions<unknown>): MatmulSpec => ({
  transA: !!o.transA,
  transB: !!o.transB,
  activation: o.activation ?? "none",
});

function checkSize(r: KernelRunner, buf: GPUBuffer, elements: number, what: string) {
  const bytes = elements * r.elementBytes(buf);
  if (buf.size < bytes) throw new Error(`matmul: ${what} holds ${buf.size} bytes but needs ${bytes}`);
}

/** C[batch] = alpha·op(A)·op(B) + bias → activation → + residual (→ + old C when accumulating). */
export function matmul(r: KernelRunner, a: GPUBuffer, b: GPUBuffer, out: GPUBuffer, o: MatmulOptions): void {
  const { m, n, k, batch = 1, alpha = 1 } = o;
  if (m * n * batch === 0) return;
  checkSize(r, a, batch * m * k, "A");
  checkSize(r, b, (o.broadcastB ? 1 : batch) * k * n, "B");
  checkSize(r, out, batch * m * n, "C");
  if (o.bias) checkSize(r, o.bias, n, "bias");
  if (o.residual) checkSize(r, o.residual, batch * m * n, "residual");
  const plan = planMatmul(r, o);
  matmulGemm.run(r, matmulSpec(o), { M: m, N: n, K: k, batches: batch }, plan, {
    operands: { a, b },
    epilogue: { bias: o.bias, residual: o.residual },
    output: out,
    uniforms: { strideB: o.broadcastB ? 0 : k * n, alpha, accumulate: o.accumulate ? 1 : 0 },
  });
}
/** The reference: same semantics as `matmul`, accumulated in f64; `c` is the old C when accumulating. */
export function matmulCpu(
  a: Float32Array,
  b: Float32Array,
  o: MatmulOptions<Float32Array>,
  c?: Float32Array,
): Float32Array {
  const { m, n, k, batch = 1, transA = false, transB = false, alpha = 1 } = o;
  if (o.accumulate && !c) throw new Error("matmulCpu: accumulate needs the old C");
  const act = o.activation && o.activation !== "none" ? UNARY[o.activation].cpu : undefined;
  const out = new Float32Array(batch * m * n);
  const row = new Float64Array(n);
  for (let z = 0; z < batch; z++) {
    const baseA = z * m * k,
      baseB = o.broadcastB ? 0 : z * k * n;
    for (let i = 0; i < m; i++) {
      row.fill(0);
      for (let p = 0; p < k; p++) {
        const av = a[baseA + (transA ? p * m + i : i * k + p)]!;
        for (let j = 0; j < n; j++) row[j] += av * b[baseB + (transB ? j * k + p : p * n + j)]!;
      }
      for (let j = 0; j < n; j++) {
        const idx = (z * m + i) * n + j;
        let v = alpha * row[j]! + (o.bias ? o.bias[j]! : 0);
        if (act) v = act(v);
        out[idx] = v + (o.residual ? o.residual[idx]! : 0) + (o.accumulate ? c![idx]! : 0);
      }
    }
  }
  return out;
}
