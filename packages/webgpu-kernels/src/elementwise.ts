/**
 * Elementwise kernels: unary maps, binary ops with NumPy/PyTorch broadcasting, and their CPU references.
 * One thread per output element; shapes up to rank 6 are passed as uniform scalars, the rank is baked in.
 */
import { defineKernel } from "./kernel.ts";
import { FOLDED_INDEX, type KernelRunner } from "./runner.ts";
import { MAX_RANK, rankUniforms, rankValues, stridedOffsetWgsl, unravelWgsl } from "./strided-index.ts";

const WG = 256;

/** WGSL expression of `x` and its CPU twin; keep both in one table so they cannot drift. */
export const UNARY = {
  identity: { wgsl: "x", cpu: (x: number) => x },
  neg: { wgsl: "-x", cpu: (x: number) => -x },
  exp: { wgsl: "exp(x)", cpu: Math.exp },
  log: { wgsl: "log(x)", cpu: Math.log },
  sqrt: { wgsl: "sqrt(x)", cpu: Math.sqrt },
  rsqrt: { wgsl: "inverseSqrt(x)", cpu: (x: number) => 1 / Math.sqrt(x) },
  abs: { wgsl: "abs(x)", cpu: Math.abs },
  square: { wgsl: "x * x", cpu: (x: number) => x * x },
  relu: { wgsl: "max(x, 0.0)", cpu: (x: number) => Math.max(x, 0) },
  sigmoid: { wgsl: "1.0 / (1.0 + exp(-x))", cpu: (x: number) => 1 / (1 + Math.exp(-x)) },
  silu: { wgsl: "x / (1.0 + exp(-x))", cpu: (x: number) => x / (1 + Math.exp(-x)) },
  // CLIP's quick_gelu: x·σ(1.702x).
  quickGelu: { wgsl: "x / (1.0 + exp(-1.702 * x))", cpu: (x: number) => x / (1 + Math.exp(-1.702 * x)) },
  // Exact (erf) GELU, as torch.nn.functional.gelu's default; erf via Abramowitz–Stegun 7.1.26 (|err| < 1.5e-7).
  gelu: {
    wgsl: "0.5 * x * (1.0 + erf_approx(x * 0.7071067811865476))",
    cpu: (x: number) => 0.5 * x * (1 + erf(x * Math.SQRT1_2)),
  },
  tanh: { wgsl: "tanh(x)", cpu: Math.tanh },
  recip: { wgsl: "1.0 / x", cpu: (x: number) => 1 / x },
} as const;
export type UnaryOp = keyof typeof UNARY;

export const BINARY = {
  add: { wgsl: "a + b", cpu: (a: number, b: number) => a + b },
  sub: { wgsl: "a - b", cpu: (a: number, b: number) => a - b },
  mul: { wgsl: "a * b", cpu: (a: number, b: number) => a * b },
  div: { wgsl: "a / b", cpu: (a: number, b: number) => a / b },
  maximum: { wgsl: "max(a, b)", cpu: Math.max },
  minimum: { wgsl: "min(a, b)", cpu: Math.min },
  pow: { wgsl: "pow(a, b)", cpu: Math.pow },
  // Derivative helpers used by autograd: d/dx of the activation times the incoming gradient b.
  siluGrad: {
    wgsl: "b * (1.0 / (1.0 + exp(-a))) * (1.0 + a * (1.0 - 1.0 / (1.0 + exp(-a))))",
    cpu: (a: number, b: number) => {
      const s = 1 / (1 + Math.exp(-a));
      return b * s * (1 + a * (1 - s));
    },
  },
  quickGeluGrad: {
    wgsl: "b * (1.0 / (1.0 + exp(-1.702 * a))) * (1.0 + 1.702 * a * (1.0 - 1.0 / (1.0 + exp(-1.702 * a))))",
    cpu: (a: number, b: number) => {
      const s = 1 / (1 + Math.exp(-1.702 * a));
      return b * s * (1 + 1.702 * a * (1 - s));
    },
  },
  geluGrad: {
    wgsl: "b * (0.5 * (1.0 + erf_approx(a * 0.7071067811865476)) + a * 0.3989422804014327 * exp(-0.5 * a * a))",
    cpu: (a: number, b: number) =>
      b * (0.5 * (1 + erf(a * Math.SQRT1_2)) + a * 0.3989422804014327 * Math.exp(-0.5 * a * a)),
  },
  sigmoidGrad: {
    wgsl: "b * (1.0 / (1.0 + exp(-a))) * (1.0 - 1.0 / (1.0 + exp(-a)))",
    cpu: (a: number, b: number) => {
      const s = 1 / (1 + Math.exp(-a));
      return b * s * (1 - s);
    },
  },
  reluGrad: { wgsl: "select(0.0, b, a > 0.0)", cpu: (a: number, b: number) => (a > 0 ? b : 0) },
} as const;
export type BinaryOp = keyof typeof BINARY;

export const ERF_WGSL = /* wgsl */ `
fn erf_approx(v: f32) -> f32 {
  let s = sign(v); let x = abs(v);
  let t = 1.0 / (1.0 + 0.3275911 * x);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-x * x);
  return s * y;
}`;

export function erf(v: number): number {
  const s = Math.sign(v),
    x = Math.abs(v),
    t = 1 / (1 + 0.3275911 * x);
  return (
    s *
    (1 -
      ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
        t *
        Math.exp(-x * x))
  );
}

const unaryKernel = defineKernel({
  name: "unary",
  inputs: { xs: "f32" },
  outputs: { out: "f32" },
  uniforms: { n: "u32", scale: "f32", shift: "f32" },
  body: ({ op }: { op: UnaryOp }) => /* wgsl */ `
    ${FOLDED_INDEX} ${ERF_WGSL}
    @compute @workgroup_size(${WG})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      let i = foldedIndex(wid, nwg) * ${WG}u + lid;
      if (i >= p.n) { return; }
      let x = xs[i];
      out[i] = p.scale * (${UNARY[op].wgsl}) + p.shift;
    }`,
});

const fillKernel = defineKernel({
  name: "fill",
  inputs: {},
  outputs: { out: "f32" },
  uniforms: { n: "u32", value: "f32" },
  body: () => /* wgsl */ `
    ${FOLDED_INDEX}
    @compute @workgroup_size(${WG})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      let i = foldedIndex(wid, nwg) * ${WG}u + lid;
      if (i < p.n) { out[i] = p.value; }
    }`,
});

/** out = scale · op(x) + shift; `scale`/`shift` make affine maps free. */
export function unary(r: KernelRunner, op: UnaryOp, x: GPUBuffer, out: GPUBuffer, n: number, scale = 1, shift = 0) {
  unaryKernel.run(r, { op }, { buffers: { xs: x, out }, uniforms: { n, scale, shift }, workgroups: Math.ceil(n / WG) });
}

/** out[i] = value (pooled buffers hold stale data, so "zeros" and "full" need a write). */
export function fill(r: KernelRunner, out: GPUBuffer, n: number, value: number) {
  fillKernel.run(r, {}, { buffers: { out }, uniforms: { n, value }, workgroups: Math.ceil(n / WG) });
}

export function unaryCpu(op: UnaryOp, x: ArrayLike<number>, scale = 1, shift = 0): Float64Array {
  const f = UNARY[op].cpu;
  return Float64Array.from(x, (v) => scale * f(v) + shift);
}

/** Output shape of broadcasting `a` against `b` (PyTorch rules), or an error naming both shapes. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1,
      db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1)
      throw new Error(`shapes [${a}] and [${b}] cannot be broadcast together (dim ${i}: ${da} vs ${db})`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Element strides of `shape` read as if broadcast to `out` (0 along broadcast dimensions). */
export function broadcastStrides(shape: readonly number[], out: readonly number[]): number[] {
  const strides = new Array(out.length).fill(0);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const j = out.length - shape.length + i;
    strides[j] = shape[i] === 1 ? 0 : s;
    s *= shape[i]!;
  }
  return strides;
}

/** `rank` 0: both operands have the output's shape, so the output index is theirs too (no index arithmetic). */
const binaryKernel = defineKernel({
  name: "binary",
  inputs: { as_: "f32", bs: "f32" },
  outputs: { out: "f32" },
  uniforms: { n: "u32", ...rankUniforms("d"), ...rankUniforms("aStride"), ...rankUniforms("bStride") },
  body: ({ op, rank }: { op: BinaryOp; rank: number }) => /* wgsl */ `
    ${FOLDED_INDEX} ${ERF_WGSL}
    @compute @workgroup_size(${WG})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      let i = foldedIndex(wid, nwg) * ${WG}u + lid;
      if (i >= p.n) { return; }
      ${
        rank === 0
          ? "let ia = i; let ib = i;"
          : `${unravelWgsl(rank)}
      let ia = ${stridedOffsetWgsl(rank, "aStride")}; let ib = ${stridedOffsetWgsl(rank, "bStride")};`
      }
      let a = as_[ia]; let b = bs[ib];
      out[i] = ${BINARY[op].wgsl};
    }`,
});

/** out = op(a, b) with broadcasting; `out` has the broadcast shape. */
export function binary(
  r: KernelRunner,
  op: BinaryOp,
  a: GPUBuffer,
  aShape: readonly number[],
  b: GPUBuffer,
  bShape: readonly number[],
  out: GPUBuffer,
) {
  const shape = broadcastShapes(aShape, bShape);
  if (shape.length > MAX_RANK)
    throw new Error(
      `binary ${op}: shapes [${aShape}] and [${bShape}] broadcast to rank ${shape.length}, but at most ${MAX_RANK} dims are supported; merge contiguous dims first`,
    );
  const dims = shape.length ? shape : [1];
  const aStrides = shape.length ? broadcastStrides(aShape, shape) : [0];
  const bStrides = shape.length ? broadcastStrides(bShape, shape) : [0];
  const n = dims.reduce((x, y) => x * y, 1);
  const same = sameShape(aShape, shape) && sameShape(bShape, shape);
  binaryKernel.run(
    r,
    { op, rank: same ? 0 : dims.length },
    {
      buffers: { as_: a, bs: b, out },
      uniforms: { n, ...rankValues("d", dims), ...rankValues("aStride", aStrides), ...rankValues("bStride", bStrides) },
      workgroups: Math.ceil(n / WG),
    },
  );
}

export function binaryCpu(
  op: BinaryOp,
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
): Float64Array {
  const shape = broadcastShapes(aShape, bShape);
  const sa = broadcastStrides(aShape, shape),
    sb = broadcastStrides(bShape, shape);
  const n = shape.reduce((x, y) => x * y, 1);
  const out = new Float64Array(n),
    f = BINARY[op].cpu;
  for (let i = 0; i < n; i++) {
    let rest = i,
      ia = 0,
      ib = 0;
    for (let d = shape.length - 1; d >= 0; d--) {
      const c = rest % shape[d]!;
      rest = Math.floor(rest / shape[d]!);
      ia += c * sa[d]!;
      ib += c * sb[d]!;
    }
    out[i] = f(a[ia]!, b[ib]!);
  }
  return out;
}

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((v, i) => v === b[i]);
