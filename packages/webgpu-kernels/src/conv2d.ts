/**
 * 2-D convolution (NCHW, weights [Cout, Cin, kh, kw] as PyTorch lays them out, groups = 1) and its
 * gradients, all three as implicit GEMM on the GEMM engine (gemm.ts): the im2col matrix is never
 * materialised, the engine's load hooks gather its elements where the kernel needs them.
 *
 *   forward      y[co, (b,oy,ox)] = Σ_(ci,ky,kx) w[co, (ci,ky,kx)] · x[b, ci, oy·s+ky−pad, ox·s+kx−pad]
 *   input grad   dx[ci, (b,iy,ix)] = Σ_(co,ky,kx) w[co, ci, ky, kx] · dy[b, co, (iy+pad−ky)/s, (ix+pad−kx)/s]
 *                                    (only where the division is exact and lands inside dy)
 *   weight grad  dw[co, (ci,ky,kx)] = Σ_(b,oy,ox) dy[b, co, oy, ox] · x[b, ci, oy·s+ky−pad, ox·s+kx−pad]
 *
 * Kernel size and stride are baked into the WGSL so the index arithmetic on the reduction axis divides by
 * constants; batch, channels, spatial sizes and padding are uniforms.
 */
import { defineGemm, planGemm } from "./gemm.ts";
import { defineKernel } from "./kernel.ts";
import { FOLDED_INDEX, type KernelRunner } from "./runner.ts";

export interface Conv2dShape {
  batch: number;
  inChannels: number;
  outChannels: number;
  height: number;
  width: number;
  kernelH: number;
  kernelW: number;
  strideH?: number;
  strideW?: number;
  /** Top padding, and bottom too unless `padBottom` is given. */
  padH?: number;
  /** Left padding, and right too unless `padRight` is given. */
  padW?: number;
  padBottom?: number;
  padRight?: number;
}

export interface Conv2dOptions extends Conv2dShape {
  /** [Cout], added to every output position of its channel. */
  bias?: GPUBuffer;
  /** Same shape as the output, added after the bias (a fused skip connection). */
  residual?: GPUBuffer;
  /** Add the result to what `out` holds instead of overwriting it. */
  accumulate?: boolean;
}

export interface Conv2dGradOptions extends Conv2dShape {
  /** Add the gradient to what the destination holds (gradient accumulation) instead of overwriting it. */
  accumulate?: boolean;
}

/** Every size a convolution needs, with defaults applied and the output size derived. */
export interface Conv2dGeometry {
  batch: number;
  cin: number;
  cout: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  padTop: number;
  padLeft: number;
  padBottom: number;
  padRight: number;
  hOut: number;
  wOut: number;
}

export function conv2dGeometry(o: Conv2dShape): Conv2dGeometry {
  const sh = o.strideH ?? 1,
    sw = o.strideW ?? 1;
  const padTop = o.padH ?? 0,
    padLeft = o.padW ?? 0;
  const padBottom = o.padBottom ?? padTop,
    padRight = o.padRight ?? padLeft;
  const hOut = Math.floor((o.height + padTop + padBottom - o.kernelH) / sh) + 1;
  const wOut = Math.floor((o.width + padLeft + padRight - o.kernelW) / sw) + 1;
  if (!(hOut >= 1 && wOut >= 1)) {
    throw new Error(
      `conv2d: a ${o.kernelH}×${o.kernelW} kernel does not fit a ${o.height}×${o.width} input padded by (${padTop}, ${padBottom}, ${padLeft}, ${padRight}); pad more or use a smaller kernel`,
    );
  }
  return {
    batch: o.batch,
    cin: o.inChannels,
    cout: o.outChannels,
    h: o.height,
    w: o.width,
    kh: o.kernelH,
    kw: o.kernelW,
    sh,
    sw,
    padTop,
    padLeft,
    padBottom,
    padRight,
    hOut,
    wOut,
  };
}

export function conv2dOutputSize(o: Conv2dShape): { height: number; width: number } {
  const g = conv2dGeometry(o);
  return { height: g.hOut, width: g.wOut };
}

// ---------------------------------------------------------------------------------------------------
// The three products, as clients of the GEMM engine (gemm.ts).

/** The convolution's runtime sizes and top/left padding (after the engine's uniforms in `Params`). */
const CONV_UNIFORMS = {
  batch: "u32",
  cin: "u32",
  cout: "u32",
  h: "u32",
  w: "u32",
  hOut: "u32",
  wOut: "u32",
  padTop: "i32",
  padLeft: "i32",
  /** Add to what the output holds (a uniform, so it costs no pipeline). */
  accumulate: "u32",
} as const;

/** The compile-time part of a convolution: kernel size and stride, so the reduction axis splits by constants. */
type Conv2dSpec = { kernelH: number; kernelW: number; strideH: number; strideW: number };

const consts = (s: Conv2dSpec) =>
  `const KW = ${s.kernelW}u; const KHW = ${s.kernelH * s.kernelW}u; const SH = ${s.strideH}u; const SW = ${s.strideW}u;`;

/** Position (b, py, px) of column `n` of an NCHW tensor flattened as [C, B·H·W]. */
const SPLIT_NHW = "let hw = h * w; let b = n / hw; let pos = n % hw; let py = pos / w; let px = pos % w;";

/** Writes v (+ old value when accumulating) to element `i` of `out`. */
const accumulateInto = (out: string) => `if (p.accumulate != 0u) { v += ${out}[i]; }\n  ${out}[i] = v;`;

/**
 * Forward: M = Cout, N = batch·Hout·Wout, K = Cin·kh·kw. A 1×1 stride-1 conv without padding (`pointwise`) reads
 * x as a plain [Cin, H·W] matrix per image.
 */
const conv2dGemm = defineGemm({
  name: "conv2d",
  operands: { x: "f32", wt: "f32" },
  epilogueInputs: ["bias", "residual"],
  output: "out",
  uniforms: CONV_UNIFORMS,
  aAlongK: () => true,
  bAlongK: () => false,
  loads: (s: Conv2dSpec & { pointwise: boolean }) => {
    const gather = s.pointwise
      ? /* wgsl */ `
struct BCol { base: u32 }
fn bCol(z: u32, n: u32) -> BCol { let hw = p.h * p.w; return BCol((n / hw) * p.cin * hw + n % hw); }
fn bLoad(c: BCol, k: u32) -> f32 { return x[c.base + k * p.h * p.w]; }`
      : /* wgsl */ `
struct BCol { base: u32, iy: i32, ix: i32 }
fn bCol(z: u32, n: u32) -> BCol {
  let h = p.hOut; let w = p.wOut; ${SPLIT_NHW}
  return BCol(b * p.cin * p.h * p.w, i32(py * SH) - p.padTop, i32(px * SW) - p.padLeft);
}
fn bLoad(c: BCol, k: u32) -> f32 {
  let ci = k / KHW; let r = k % KHW;
  let iy = c.iy + i32(r / KW); let ix = c.ix + i32(r % KW);
  if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) { return 0.0; }
  return x[c.base + (ci * p.h + u32(iy)) * p.w + u32(ix)];
}`;
    return /* wgsl */ `
${consts(s)}
struct ARow { base: u32 }
fn aRow(z: u32, m: u32) -> ARow { return ARow(m * p.K); }
fn aLoad(r: ARow, k: u32) -> f32 { return wt[r.base + k]; }
${gather}`;
  },
  store: (s) => /* wgsl */ `
fn store(z: u32, m: u32, n: u32, acc: f32) {
  let hw = p.hOut * p.wOut; let i = ((n / hw) * p.cout + m) * hw + n % hw;
  var v = acc${s.epilogue.includes("bias") ? " + bias[m]" : ""}${s.epilogue.includes("residual") ? " + residual[i]" : ""};
  ${accumulateInto("out")}
}`,
});

/** Input grad: M = Cin, N = batch·H·W, K = Cout·kh·kw; taps whose (iy + pad − ky) is not a multiple of the stride contribute nothing. */
const conv2dInputGradGemm = defineGemm({
  name: "conv2dInputGrad",
  operands: { dy: "f32", wt: "f32" },
  epilogueInputs: [],
  output: "dx",
  uniforms: CONV_UNIFORMS,
  aAlongK: () => true,
  bAlongK: () => false,
  loads: (s: Conv2dSpec) => {
    const strided = (v: string, stride: number) => (stride > 1 ? ` || ${v} % ${stride} != 0` : "");
    return /* wgsl */ `
${consts(s)}
struct ARow { base: u32 }
fn aRow(z: u32, m: u32) -> ARow { return ARow(m * KHW); }
fn aLoad(r: ARow, k: u32) -> f32 { return wt[(k / KHW) * p.cin * KHW + r.base + k % KHW]; }
struct BCol { base: u32, ty: i32, tx: i32 }
fn bCol(z: u32, n: u32) -> BCol {
  let h = p.h; let w = p.w; ${SPLIT_NHW}
  return BCol(b * p.cout * p.hOut * p.wOut, i32(py) + p.padTop, i32(px) + p.padLeft);
}
fn bLoad(c: BCol, k: u32) -> f32 {
  let co = k / KHW; let r = k % KHW;
  let ty = c.ty - i32(r / KW); let tx = c.tx - i32(r % KW);
  if (ty < 0 || tx < 0${strided("ty", s.strideH)}${strided("tx", s.strideW)}) { return 0.0; }
  let oy = u32(ty) / SH; let ox = u32(tx) / SW;
  if (oy >= p.hOut || ox >= p.wOut) { return 0.0; }
  return dy[c.base + (co * p.hOut + oy) * p.wOut + ox];
}`;
  },
  store: () => /* wgsl */ `
fn store(z: u32, m: u32, n: u32, acc: f32) {
  let hw = p.h * p.w; let i = ((n / hw) * p.cin + m) * hw + n % hw;
  var v = acc;
  ${accumulateInto("dx")}
}`,
});

/** Weight grad: M = Cout, N = Cin·kh·kw, K = batch·Hout·Wout (long: split across workgroups when the output is small). */
const conv2dWeightGradGemm = defineGemm({
  name: "conv2dWeightGrad",
  operands: { x: "f32", dy: "f32" },
  epilogueInputs: [],
  output: "dw",
  uniforms: CONV_UNIFORMS,
  aAlongK: () => true,
  bAlongK: () => true,
  loads: (s: Conv2dSpec) => /* wgsl */ `
${consts(s)}
struct ARow { base: u32 }
fn aRow(z: u32, m: u32) -> ARow { return ARow(m * p.hOut * p.wOut); }
// dy[b, co, pos] with k = b·HWout + pos: the image's offset is b·(Cout − 1)·HWout beyond co·HWout + k.
fn aLoad(r: ARow, k: u32) -> f32 { let hw = p.hOut * p.wOut; return dy[r.base + k + (k / hw) * (p.cout - 1u) * hw]; }
struct BCol { ci: u32, ky: i32, kx: i32 }
fn bCol(z: u32, n: u32) -> BCol { let r = n % KHW; return BCol(n / KHW, i32(r / KW) - p.padTop, i32(r % KW) - p.padLeft); }
fn bLoad(c: BCol, k: u32) -> f32 {
  let h = p.hOut; let w = p.wOut; let n = k; ${SPLIT_NHW}
  let iy = i32(py * SH) + c.ky; let ix = i32(px * SW) + c.kx;
  if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) { return 0.0; }
  return x[((b * p.cin + c.ci) * p.h + u32(iy)) * p.w + u32(ix)];
}`,
  store: () => /* wgsl */ `
fn store(z: u32, m: u32, n: u32, acc: f32) {
  let i = m * p.N + n;
  var v = acc;
  ${accumulateInto("dw")}
}`,
});

const WG = 256;

/** gradB[co] = Σ_(b, y, x) dy[b, co, y, x]: one workgroup per channel, a tree sum in workgroup memory. */
const conv2dBiasGradKernel = defineKernel({
  name: "conv2dBiasGrad",
  inputs: { dy: "f32" },
  outputs: { db: "f32" },
  uniforms: { batch: "u32", channels: "u32", hw: "u32" },
  body: (s: { accumulate: boolean }) => /* wgsl */ `
${FOLDED_INDEX}
var<workgroup> partial: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = foldedIndex(wid, nwg);
  if (c >= p.channels) { return; }
  var s = 0.0;
  for (var b = 0u; b < p.batch; b++) {
    let base = (b * p.channels + c) * p.hw;
    for (var i = lid; i < p.hw; i += ${WG}u) { s += dy[base + i]; }
  }
  partial[lid] = s;
  for (var span = ${WG / 2}u; span > 0u; span /= 2u) {
    workgroupBarrier();
    if (lid < span) { partial[lid] += partial[lid + span]; }
  }
  if (lid == 0u) { db[c] = partial[0]${s.accumulate ? " + db[c]" : ""}; }
}`,
});

// ---------------------------------------------------------------------------------------------------
// Launchers.

const convSpec = (g: Conv2dGeometry): Conv2dSpec => ({ kernelH: g.kh, kernelW: g.kw, strideH: g.sh, strideW: g.sw });
const convUniforms = (g: Conv2dGeometry, accumulate: boolean | undefined) => ({
  batch: g.batch,
  cin: g.cin,
  cout: g.cout,
  h: g.h,
  w: g.w,
  hOut: g.hOut,
  wOut: g.wOut,
  padTop: g.padTop,
  padLeft: g.padLeft,
  accumulate: accumulate ? 1 : 0,
});

/** The product M×N×K on `r`'s device; convolutions never read vec4s (their gathers are not contiguous). */
const plan = (r: KernelRunner, M: number, N: number, K: number) => {
  const shape = { M, N, K, batches: 1 };
  return { shape, plan: planGemm(r, shape) };
};

/** out = conv2d(x, w) (+ bias) (+ residual) (+ out when accumulating). */
export function conv2d(r: KernelRunner, x: GPUBuffer, w: GPUBuffer, out: GPUBuffer, o: Conv2dOptions) {
  const g = conv2dGeometry(o);
  const pointwise =
    g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 && g.padTop + g.padBottom + g.padLeft + g.padRight === 0;
  const p = plan(r, g.cout, g.batch * g.hOut * g.wOut, g.cin * g.kh * g.kw);
  conv2dGemm.run(r, { ...convSpec(g), pointwise }, p.shape, p.plan, {
    operands: { x, wt: w },
    epilogue: { bias: o.bias, residual: o.residual },
    output: out,
    uniforms: convUniforms(g, o.accumulate),
  });
}

/** gradIn = dL/dx given gradOut = dL/dy (a transposed convolution of gradOut with w). */
export function conv2dInputGrad(
  r: KernelRunner,
  gradOut: GPUBuffer,
  w: GPUBuffer,
  gradIn: GPUBuffer,
  o: Conv2dGradOptions,
) {
  const g = conv2dGeometry(o);
  const p = plan(r, g.cin, g.batch * g.h * g.w, g.cout * g.kh * g.kw);
  conv2dInputGradGemm.run(r, convSpec(g), p.shape, p.plan, {
    operands: { dy: gradOut, wt: w },
    output: gradIn,
    uniforms: convUniforms(g, o.accumulate),
  });
}

/** gradW = dL/dw, [Cout, Cin, kh, kw]. */
export function conv2dWeightGrad(
  r: KernelRunner,
  x: GPUBuffer,
  gradOut: GPUBuffer,
  gradW: GPUBuffer,
  o: Conv2dGradOptions,
) {
  const g = conv2dGeometry(o);
  const p = plan(r, g.cout, g.cin * g.kh * g.kw, g.batch * g.hOut * g.wOut);
  conv2dWeightGradGemm.run(r, convSpec(g), p.shape, p.plan, {
    operands: { x, dy: gradOut },
    output: gradW,
    uniforms: convUniforms(g, o.accumulate),
  });
}

/** gradB = dL/db, [Cout]: gradOut summed over batch and space. */
export function conv2dBiasGrad(r: KernelRunner, gradOut: GPUBuffer, gradB: GPUBuffer, o: Conv2dGradOptions) {
  const g = conv2dGeometry(o);
  conv2dBiasGradKernel.run(
    r,
    { accumulate: !!o.accumulate },
    {
      buffers: { dy: gradOut, db: gradB },
      uniforms: { batch: g.batch, channels: g.cout, hw: g.hOut * g.wOut },
      workgroups: g.cout,
    },
  );
}

// ---------------------------------------------------------------------------------------------------
// CPU references: the direct definition, one multiply-add per (output, tap), accumulated in float64.

/** Calls `tap(xi, wi, yi)` for every input/weight/output index triple of the convolution that lies inside x. */
function forEachTap(g: Conv2dGeometry, tap: (xi: number, wi: number, yi: number) => void) {
  for (let b = 0; b < g.batch; b++)
    for (let co = 0; co < g.cout; co++)
      for (let oy = 0; oy < g.hOut; oy++)
        for (let ox = 0; ox < g.wOut; ox++) {
          const yi = ((b * g.cout + co) * g.hOut + oy) * g.wOut + ox;
          for (let ci = 0; ci < g.cin; ci++)
            for (let ky = 0; ky < g.kh; ky++) {
              const iy = oy * g.sh + ky - g.padTop;
              if (iy < 0 || iy >= g.h) continue;
              for (let kx = 0; kx < g.kw; kx++) {
                const ix = ox * g.sw + kx - g.padLeft;
                if (ix < 0 || ix >= g.w) continue;
                tap(((b * g.cin + ci) * g.h + iy) * g.w + ix, ((co * g.cin + ci) * g.kh + ky) * g.kw + kx, yi);
              }
            }
        }
}

export function conv2dCpu(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  o: Conv2dShape,
  bias?: ArrayLike<number>,
  residual?: ArrayLike<number>,
): Float64Array {
  const g = conv2dGeometry(o);
  const y = new Float64Array(g.batch * g.cout * g.hOut * g.wOut);
  forEachTap(g, (xi, wi, yi) => {
    y[yi] += x[xi]! * w[wi]!;
  });
  const hw = g.hOut * g.wOut;
  for (let i = 0; i < y.length; i++)
    y[i] += (bias ? bias[Math.floor(i / hw) % g.cout]! : 0) + (residual ? residual[i]! : 0);
  return y;
}

export function conv2dInputGradCpu(gradOut: ArrayLike<number>, w: ArrayLike<number>, o: Conv2dShape): Float64Array {
  const g = conv2dGeometry(o);
  const dx = new Float64Array(g.batch * g.cin * g.h * g.w);
  forEachTap(g, (xi, wi, yi) => {
    dx[xi] += gradOut[yi]! * w[wi]!;
  });
  return dx;
}

export function conv2dWeightGradCpu(x: ArrayLike<number>, gradOut: ArrayLike<number>, o: Conv2dShape): Float64Array {
  const g = conv2dGeometry(o);
  const dw = new Float64Array(g.cout * g.cin * g.kh * g.kw);
  forEachTap(g, (xi, wi, yi) => {
    dw[wi] += gradOut[yi]! * x[xi]!;
  });
  return dw;
}

export function conv2dBiasGradCpu(gradOut: ArrayLike<number>, o: Conv2dShape): Float64Array {
  const g = conv2dGeometry(o);
  const db = new Float64Array(g.cout);
  const hw = g.hOut * g.wOut;
  for (let i = 0; i < gradOut.length; i++) db[Math.floor(i / hw) % g.cout] += gradOut[i]!;
  return db;
}
