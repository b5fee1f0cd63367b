/**
 * 2-D convolution (NCHW, weights [Cout, Cin, kh, kw] as PyTorch lays them out, groups = 1) and its
 * gradients, all three as implicit GEMM: the im2col matrix is never materialised, each tile of it is
 * gathered straight into workgroup memory.
 *
 *   forward      y[co, (b,oy,ox)] = Σ_(ci,ky,kx) w[co, (ci,ky,kx)] · x[b, ci, oy·s+ky−pad, ox·s+kx−pad]
 *   input grad   dx[ci, (b,iy,ix)] = Σ_(co,ky,kx) w[co, ci, ky, kx] · dy[b, co, (iy+pad−ky)/s, (ix+pad−kx)/s]
 *                                    (only where the division is exact and lands inside dy)
 *   weight grad  dw[co, (ci,ky,kx)] = Σ_(b,oy,ox) dy[b, co, oy, ox] · x[b, ci, oy·s+ky−pad, ox·s+kx−pad]
 *
 * Kernel size and stride are baked into the WGSL so the index arithmetic on the reduction axis divides by
 * constants; batch, channels, spatial sizes and padding are uniforms.
 */
import { FOLDED_INDEX, type KernelRunner, type ParamValue } from "./runner.ts";

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
// The shared tiled GEMM: C[M, N] = Σ_k A[m, k] · B[k, n], with A and B gathered by op-specific WGSL.

/**
 * A workgroup computes a tm×tn tile of C, stepping through K tk at a time with both operand tiles in
 * workgroup memory; each thread owns an rm×rn register micro-tile (rm, rn multiples of 4, read as vec4s).
 */
export interface GemmTile {
  tm: number;
  tn: number;
  tk: number;
  rm: number;
  rn: number;
  /** No workgroup memory: each invocation gathers its own operands (see gemmDirectWgsl). */
  direct?: boolean;
}

/**
 * 64×64×16 with 4×4 per thread: 256 threads, 16 KiB of workgroup memory (the C tile, staged for the
 * epilogue), which every adapter offers. One shape for every convolution keeps the pipeline count low:
 * lavapipe spends about a second of LLVM time per pipeline. Thin layers (Cout = 3 or 4) waste most of an
 * M tile, but they are a few percent of a model's FLOPs.
 */
export const CONV_TILE: GemmTile = { tm: 64, tn: 64, tk: 16, rm: 4, rn: 4 };

/**
 * For CPU drivers: 8×8 invocations with 8×8 outputs each and no workgroup memory. lavapipe runs a
 * workgroup's invocations in SIMD chunks and turns every barrier into a switch between them, so the staged
 * tile above costs more there than it saves; CPU caches make each invocation's own loads cheap instead.
 * 8×8 outputs per invocation beat 4×4, 4×8 and 8×4 on lavapipe (VAE and UNet training steps, AVX-512 host).
 */
export const CPU_CONV_TILE: GemmTile = { tm: 64, tn: 64, tk: 16, rm: 8, rn: 8, direct: true };

/** The tile for an M-row GEMM: on CPU drivers, fewer rows per invocation when M is small (thin layers waste less). */
function tileFor(r: KernelRunner, M: number): GemmTile {
  if (!r.cpu) return CONV_TILE;
  const rm = M <= 16 ? 2 : M <= 32 ? 4 : 8;
  return { ...CPU_CONV_TILE, rm, tm: 8 * rm };
}

/**
 * What an op plugs into the GEMM: bindings (from 1), `struct ARow` + `fn aRow(m) -> ARow` (per-row work
 * hoisted out of the K loop), `fn aLoad(r: ARow, k) -> f32`, the same for B columns (`BCol`, `bCol`,
 * `bLoad`), and the epilogue `fn store(m, n, split, v)`. Loads are only called with m < M, n < N, k < K.
 */
interface GemmOp {
  body: string;
  /** Consecutive threads walk K when gathering the A (B) tile: coalesced when the source is contiguous along K. */
  aAlongK: boolean;
  bAlongK: boolean;
}

const GEMM_PARAMS = "M: u32, N: u32, K: u32, tilesM: u32, tilesN: u32, splits: u32, kTilesPerSplit: u32";

function gemmWgsl(t: GemmTile, op: GemmOp, extraParams: string): string {
  if (t.direct) return gemmDirectWgsl(t, op, extraParams);
  const threads = (t.tm / t.rm) * (t.tn / t.rn);
  const gm = t.rm / 4,
    gn = t.rn / 4;
  if (t.rm % 4 || t.rn % 4 || (t.tm * t.tk) % threads || (t.tn * t.tk) % threads || t.tm * t.tn > 4096) {
    throw new Error(
      `conv2d: tile ${JSON.stringify(t)} does not divide evenly among its ${threads} threads or exceeds 64×64`,
    );
  }
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  // Per-thread values are indexed only by constants, unrolled here, so they stay in registers (a dynamically
  // indexed private array goes to memory). Loops whose trip count is uniform but not constant (the K step,
  // the epilogue) are left rolled on purpose: lavapipe unrolls constant loops and then spends seconds in LLVM.
  const gathers = (X: "A" | "B", alongK: boolean, side: number, offset: number) => {
    const x = X.toLowerCase(),
      rc = X === "A" ? "Row" : "Col",
      lim = X === "A" ? "p.M" : "p.N",
      o = X === "A" ? "m0" : "n0";
    const loads = range((side * t.tk) / threads);
    // Element e = lid + i·threads of the side×tk tile sits at (row, k) = alongK ? (e / tk, e % tk) : (e % side, e / side).
    const at = (i: number) =>
      alongK
        ? [`(lid + ${i * threads}u) / ${t.tk}u`, `lid % ${t.tk}u`]
        : [`(lid + ${i * threads}u) % ${side}u`, `(lid + ${i * threads}u) / ${side}u`];
    return {
      setup: loads
        .map(
          (i) =>
            `let ${x}r${i} = ${at(i)[0]}; let ${x}k${i} = ${at(i)[1]}; let ${x}${rc}${i} = ${x}${rc}(min(${o} + ${x}r${i}, ${lim} - 1u));`,
        )
        .join("\n  "),
      step: loads
        .map(
          (i) => `{
      let k = k0 + ${x}k${i};
      var v = 0.0;
      if (${o} + ${x}r${i} < ${lim} && k < kEnd) { v = ${x}Load(${x}${rc}${i}, k); }
      smem[${offset}u + ${x}k${i} * ${side / 4}u + ${x}r${i} / 4u][${x}r${i} % 4u] = v;
    }`,
        )
        .join("\n    "),
    };
  };
  const bOffset = (t.tk * t.tm) / 4;
  const a = gathers("A", op.aAlongK, t.tm, 0),
    b = gathers("B", op.bAlongK, t.tn, bOffset);
  // Micro-tile row g·(tm/gm) + ty·4 + c: vec4 groups are spread across the tile so neighbouring threads read neighbouring vec4s.
  const reads = (x: string, groups: number, side: number, offset: number, lane: string) =>
    range(groups)
      .map((g) => `let ${x}${g} = smem[${offset}u + kk * ${side / 4}u + ${(g * side) / (4 * groups)}u + ${lane}];`)
      .join(" ");
  const acc = (i: number, j: number) => `acc${i}_${j}`;
  const rowOf = (i: number) => `${(i >> 2) * (t.tm / gm) + (i & 3)}u + ty * 4u`;
  const colOf = (j: number) => `${(j * t.tn) / (4 * gn)}u + tx`;
  return /* wgsl */ `
struct Params { ${GEMM_PARAMS}, ${extraParams} }
@group(0) @binding(0) var<uniform> p: Params;
${op.body}
${FOLDED_INDEX}
// The A tile [tk][tm] then the B tile [tk][tn] during the K loop; afterwards the C tile [tm][tn], so the
// epilogue writes consecutive n from consecutive threads.
var<workgroup> smem: array<vec4<f32>, ${Math.max((t.tk * (t.tm + t.tn)) / 4, (t.tm * t.tn) / 4)}>;

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let tile = foldedIndex(wid, nwg);
  if (tile >= p.tilesM * p.tilesN * p.splits) { return; }
  let n0 = (tile % p.tilesN) * ${t.tn}u;
  let m0 = ((tile / p.tilesN) % p.tilesM) * ${t.tm}u;
  let split = tile / (p.tilesN * p.tilesM);
  let kBegin = split * p.kTilesPerSplit * ${t.tk}u;
  let kEnd = min(p.K, kBegin + p.kTilesPerSplit * ${t.tk}u);

  // The (row, k) of each element this thread gathers; the row/column part is fixed for the whole K loop.
  ${a.setup}
  ${b.setup}

  let tx = lid % ${t.tn / t.rn}u; let ty = lid / ${t.tn / t.rn}u;
  ${range(gm * 4)
    .flatMap((i) => range(gn).map((j) => `var ${acc(i, j)} = vec4<f32>();`))
    .join(" ")}
  for (var k0 = kBegin; k0 < kEnd; k0 += ${t.tk}u) {
    ${a.step}
    ${b.step}
    workgroupBarrier();
    for (var kk = 0u; kk < min(${t.tk}u, kEnd - k0); kk++) {
      ${reads("a", gm, t.tm, 0, "ty")}
      ${reads("b", gn, t.tn, bOffset, "tx")}
      ${range(gm * 4)
        .flatMap((i) => range(gn).map((j) => `${acc(i, j)} += a${i >> 2}[${i & 3}] * b${j};`))
        .join("\n      ")}
    }
    workgroupBarrier();
  }

  ${range(gm * 4)
    .flatMap((i) => range(gn).map((j) => `smem[(${rowOf(i)}) * ${t.tn / 4}u + ${colOf(j)}] = ${acc(i, j)};`))
    .join("\n  ")}
  workgroupBarrier();
  let rows = min(${t.tm}u, p.M - m0); let cols = min(${t.tn}u, p.N - n0);
  for (var e = lid; e < rows * ${t.tn}u; e += ${threads}u) {
    let n = e % ${t.tn}u;
    if (n < cols) { store(m0 + e / ${t.tn}u, n0 + n, split, smem[e / 4u][e % 4u]); }
  }
}`;
}

/**
 * The same GEMM without workgroup memory or barriers: invocation (tx, ty) of an 8×8 workgroup owns rows
 * m0 + ty + 8i and columns n0 + tx + 8j, so neighbouring invocations (SIMD lanes on a CPU) gather
 * neighbouring columns. Out-of-range rows and columns are clamped for loading and skipped when storing.
 */
function gemmDirectWgsl(t: GemmTile, op: GemmOp, extraParams: string): string {
  const side = 8;
  if (t.tm !== side * t.rm || t.tn !== side * t.rn)
    throw new Error(`conv2d: a direct tile must be ${side}·rm × ${side}·rn, got ${JSON.stringify(t)}`);
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const rows = range(t.rm),
    cols = range(t.rn);
  const cells = rows.flatMap((i) => cols.map((j) => [i, j] as const));
  return /* wgsl */ `
struct Params { ${GEMM_PARAMS}, ${extraParams} }
@group(0) @binding(0) var<uniform> p: Params;
${op.body}
${FOLDED_INDEX}
@compute @workgroup_size(${side * side})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let tile = foldedIndex(wid, nwg);
  if (tile >= p.tilesM * p.tilesN * p.splits) { return; }
  let n0 = (tile % p.tilesN) * ${t.tn}u + lid % ${side}u;
  let m0 = ((tile / p.tilesN) % p.tilesM) * ${t.tm}u + lid / ${side}u;
  let split = tile / (p.tilesN * p.tilesM);
  let kBegin = split * p.kTilesPerSplit * ${t.tk}u;
  let kEnd = min(p.K, kBegin + p.kTilesPerSplit * ${t.tk}u);
  ${rows.map((i) => `let r${i} = aRow(min(m0 + ${side * i}u, p.M - 1u));`).join(" ")}
  ${cols.map((j) => `let c${j} = bCol(min(n0 + ${side * j}u, p.N - 1u));`).join(" ")}
  ${cells.map(([i, j]) => `var acc${i}_${j} = 0.0;`).join(" ")}
  for (var k = kBegin; k < kEnd; k++) {
    ${rows.map((i) => `let a${i} = aLoad(r${i}, k);`).join(" ")}
    ${cols.map((j) => `let b${j} = bLoad(c${j}, k);`).join(" ")}
    ${cells.map(([i, j]) => `acc${i}_${j} += a${i} * b${j};`).join(" ")}
  }
  // One copy of the store in a loop, not one per accumulator: lavapipe compiles the inlined copies many times
  // slower (the same change cut the direct matmul's compile from about a minute to 2 s).
  var accs: array<f32, ${t.rm * t.rn}>;
  ${cells.map(([i, j]) => `accs[${i * t.rn + j}] = acc${i}_${j};`).join(" ")}
  for (var q = 0u; q < ${t.rm * t.rn}u; q++) {
    let m = m0 + ${side}u * (q / ${t.rn}u); let n = n0 + ${side}u * (q % ${t.rn}u);
    if (m < p.M && n < p.N) { store(m, n, split, accs[q]); }
  }
}`;
}

/** Uniforms after the GEMM's own: the convolution's runtime sizes and top/left padding. */
const CONV_PARAMS = "batch: u32, cin: u32, cout: u32, h: u32, w: u32, hOut: u32, wOut: u32, padTop: i32, padLeft: i32";

/** The compile-time part of a convolution: kernel size and stride, so the reduction axis splits by constants. */
export interface Conv2dKernelSpec {
  tile: GemmTile;
  kernelH: number;
  kernelW: number;
  strideH: number;
  strideW: number;
}

const consts = (s: Conv2dKernelSpec) =>
  `const KW = ${s.kernelW}u; const KHW = ${s.kernelH * s.kernelW}u; const SH = ${s.strideH}u; const SW = ${s.strideW}u;`;
const specKey = ({ tile: t, ...s }: Conv2dKernelSpec) =>
  `k${s.kernelH}x${s.kernelW}:s${s.strideH}x${s.strideW}:t${t.tm},${t.tn},${t.tk},${t.rm},${t.rn}${t.direct ? "d" : ""}`;

/** Position (b, py, px) of column `n` of an NCHW tensor flattened as [C, B·H·W]. */
const SPLIT_NHW = "let hw = h * w; let b = n / hw; let pos = n % hw; let py = pos / w; let px = pos % w;";

export interface Conv2dSpec extends Conv2dKernelSpec {
  /** A 1×1 stride-1 conv without padding: x is read as a plain [Cin, H·W] matrix per image. */
  pointwise: boolean;
  bias: boolean;
  residual: boolean;
  accumulate: boolean;
}

/** Forward: M = Cout, N = batch·Hout·Wout, K = Cin·kh·kw. */
export function conv2dWgsl(s: Conv2dSpec): string {
  const gather = s.pointwise
    ? /* wgsl */ `
struct BCol { base: u32 }
fn bCol(n: u32) -> BCol { let hw = p.h * p.w; return BCol((n / hw) * p.cin * hw + n % hw); }
fn bLoad(c: BCol, k: u32) -> f32 { return x[c.base + k * p.h * p.w]; }`
    : /* wgsl */ `
struct BCol { base: u32, iy: i32, ix: i32 }
fn bCol(n: u32) -> BCol {
  let h = p.hOut; let w = p.wOut; ${SPLIT_NHW}
  return BCol(b * p.cin * p.h * p.w, i32(py * SH) - p.padTop, i32(px * SW) - p.padLeft);
}
fn bLoad(c: BCol, k: u32) -> f32 {
  let ci = k / KHW; let r = k % KHW;
  let iy = c.iy + i32(r / KW); let ix = c.ix + i32(r % KW);
  if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) { return 0.0; }
  return x[c.base + (ci * p.h + u32(iy)) * p.w + u32(ix)];
}`;
  return gemmWgsl(
    s.tile,
    {
      aAlongK: true,
      bAlongK: false,
      body: /* wgsl */ `
${consts(s)}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${s.bias ? "@group(0) @binding(4) var<storage, read> bias: array<f32>;" : ""}
${s.residual ? `@group(0) @binding(${s.bias ? 5 : 4}) var<storage, read> residual: array<f32>;` : ""}
struct ARow { base: u32 }
fn aRow(m: u32) -> ARow { return ARow(m * p.K); }
fn aLoad(r: ARow, k: u32) -> f32 { return wt[r.base + k]; }
${gather}
fn store(m: u32, n: u32, split: u32, v: f32) {
  let hw = p.hOut * p.wOut; let i = ((n / hw) * p.cout + m) * hw + n % hw;
  out[i] = v${s.bias ? " + bias[m]" : ""}${s.residual ? " + residual[i]" : ""}${s.accumulate ? " + out[i]" : ""};
}`,
    },
    CONV_PARAMS,
  );
}

export interface Conv2dGradSpec extends Conv2dKernelSpec {
  accumulate: boolean;
}

/** Input grad: M = Cin, N = batch·H·W, K = Cout·kh·kw; taps whose (iy + pad − ky) is not a multiple of the stride contribute nothing. */
export function conv2dInputGradWgsl(s: Conv2dGradSpec): string {
  const strided = (v: string, stride: number) => (stride > 1 ? ` || ${v} % ${stride} != 0` : "");
  return gemmWgsl(
    s.tile,
    {
      aAlongK: true,
      bAlongK: false,
      body: /* wgsl */ `
${consts(s)}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
struct ARow { base: u32 }
fn aRow(m: u32) -> ARow { return ARow(m * KHW); }
fn aLoad(r: ARow, k: u32) -> f32 { return wt[(k / KHW) * p.cin * KHW + r.base + k % KHW]; }
struct BCol { base: u32, ty: i32, tx: i32 }
fn bCol(n: u32) -> BCol {
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
}
fn store(m: u32, n: u32, split: u32, v: f32) {
  let hw = p.h * p.w; let i = ((n / hw) * p.cin + m) * hw + n % hw;
  dx[i] = v${s.accumulate ? " + dx[i]" : ""};
}`,
    },
    CONV_PARAMS,
  );
}

/**
 * Weight grad: M = Cout, N = Cin·kh·kw, K = batch·Hout·Wout. With `split`, each K slice writes its partial
 * product to `partial[split][M][N]` and `conv2dSplitReduceWgsl` sums them.
 */
export function conv2dWeightGradWgsl(s: Conv2dGradSpec & { split: boolean }): string {
  return gemmWgsl(
    s.tile,
    {
      aAlongK: true,
      bAlongK: true,
      body: /* wgsl */ `
${consts(s)}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;
struct ARow { base: u32 }
fn aRow(m: u32) -> ARow { return ARow(m * p.hOut * p.wOut); }
// dy[b, co, pos] with k = b·HWout + pos: the image's offset is b·(Cout − 1)·HWout beyond co·HWout + k.
fn aLoad(r: ARow, k: u32) -> f32 { let hw = p.hOut * p.wOut; return dy[r.base + k + (k / hw) * (p.cout - 1u) * hw]; }
struct BCol { ci: u32, ky: i32, kx: i32 }
fn bCol(n: u32) -> BCol { let r = n % KHW; return BCol(n / KHW, i32(r / KW) - p.padTop, i32(r % KW) - p.padLeft); }
fn bLoad(c: BCol, k: u32) -> f32 {
  let h = p.hOut; let w = p.wOut; let n = k; ${SPLIT_NHW}
  let iy = i32(py * SH) + c.ky; let ix = i32(px * SW) + c.kx;
  if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) { return 0.0; }
  return x[((b * p.cin + c.ci) * p.h + u32(iy)) * p.w + u32(ix)];
}
fn store(m: u32, n: u32, split: u32, v: f32) {
  ${s.split ? "dw[(split * p.M + m) * p.N + n] = v;" : `let i = m * p.N + n; dw[i] = v${s.accumulate ? " + dw[i]" : ""};`}
}`,
    },
    CONV_PARAMS,
  );
}

const WG = 256;

/** out[i] = Σ_s partial[s·n + i] (+ out[i]): the second pass of a split-K weight grad. */
export function conv2dSplitReduceWgsl(accumulate: boolean): string {
  return /* wgsl */ `
struct Params { n: u32, splits: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${FOLDED_INDEX}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = foldedIndex(wid, nwg) * ${WG}u + lid;
  if (i >= p.n) { return; }
  var s = ${accumulate ? "out[i]" : "0.0"};
  for (var k = 0u; k < p.splits; k++) { s += partial[k * p.n + i]; }
  out[i] = s;
}`;
}

/** gradB[co] = Σ_(b, y, x) dy[b, co, y, x]: one workgroup per channel, a tree sum in workgroup memory. */
export function conv2dBiasGradWgsl(accumulate: boolean): string {
  return /* wgsl */ `
struct Params { batch: u32, channels: u32, hw: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;
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
  if (lid == 0u) { db[c] = partial[0]${accumulate ? " + db[c]" : ""}; }
}`;
}

// ---------------------------------------------------------------------------------------------------
// Launchers.

const kernelSpec = (r: KernelRunner, g: Conv2dGeometry, M: number): Conv2dKernelSpec => ({
  tile: tileFor(r, M),
  kernelH: g.kh,
  kernelW: g.kw,
  strideH: g.sh,
  strideW: g.sw,
});
const convParams = (g: Conv2dGeometry): ParamValue[] => [
  g.batch,
  g.cin,
  g.cout,
  g.h,
  g.w,
  g.hOut,
  g.wOut,
  { i32: g.padTop },
  { i32: g.padLeft },
];
const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

function runGemm(
  r: KernelRunner,
  key: string,
  wgsl: () => string,
  buffers: GPUBuffer[],
  M: number,
  N: number,
  K: number,
  g: Conv2dGeometry,
  splits = 1,
  kTilesPerSplit = ceilDiv(K, tileFor(r, M).tk),
) {
  const tile = tileFor(r, M);
  const tilesM = ceilDiv(M, tile.tm),
    tilesN = ceilDiv(N, tile.tn);
  r.run({
    key,
    wgsl,
    buffers,
    params: [M, N, K, tilesM, tilesN, splits, kTilesPerSplit, ...convParams(g)],
    workgroups: tilesM * tilesN * splits,
  });
}

/** out = conv2d(x, w) (+ bias) (+ residual) (+ out when accumulating). */
export function conv2d(r: KernelRunner, x: GPUBuffer, w: GPUBuffer, out: GPUBuffer, o: Conv2dOptions) {
  const g = conv2dGeometry(o);
  const M = g.cout,
    N = g.batch * g.hOut * g.wOut,
    K = g.cin * g.kh * g.kw;
  const pointwise =
    g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 && g.padTop + g.padBottom + g.padLeft + g.padRight === 0;
  const s: Conv2dSpec = {
    ...kernelSpec(r, g, M),
    pointwise,
    bias: !!o.bias,
    residual: !!o.residual,
    accumulate: !!o.accumulate,
  };
  const buffers = [x, w, out, ...(o.bias ? [o.bias] : []), ...(o.residual ? [o.residual] : [])];
  runGemm(
    r,
    `conv2d:${specKey(s)}:${+pointwise}${+s.bias}${+s.residual}${+s.accumulate}`,
    () => conv2dWgsl(s),
    buffers,
    M,
    N,
    K,
    g,
  );
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
  const M = g.cin,
    N = g.batch * g.h * g.w,
    K = g.cout * g.kh * g.kw;
  const s: Conv2dGradSpec = { ...kernelSpec(r, g, M), accumulate: !!o.accumulate };
  runGemm(
    r,
    `conv2dInputGrad:${specKey(s)}:${+s.accumulate}`,
    () => conv2dInputGradWgsl(s),
    [gradOut, w, gradIn],
    M,
    N,
    K,
    g,
  );
}

/** The shortest K slice worth a workgroup (in tk steps), so the partial sums stay cheap to reduce. */
const MIN_K_TILES_PER_SPLIT = 16;

/** One scratch buffer per device for split-K partial sums, grown on demand: dispatches are ordered, so reuse is safe. */
const scratch = new WeakMap<KernelRunner, GPUBuffer>();
function scratchBuffer(r: KernelRunner, bytes: number): GPUBuffer {
  let buf = scratch.get(r);
  if (!buf || buf.size < bytes) {
    // The old buffer may still be referenced by unsubmitted dispatches, so it is dropped, not destroyed.
    buf = r.device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE, label: "conv2d split-K partials" });
    scratch.set(r, buf);
  }
  return buf;
}

/** gradW = dL/dw, [Cout, Cin, kh, kw]; the long K (batch·Hout·Wout) is split across workgroups when the output is small. */
export function conv2dWeightGrad(
  r: KernelRunner,
  x: GPUBuffer,
  gradOut: GPUBuffer,
  gradW: GPUBuffer,
  o: Conv2dGradOptions,
) {
  const g = conv2dGeometry(o);
  const M = g.cout,
    N = g.cin * g.kh * g.kw,
    K = g.batch * g.hOut * g.wOut;
  const tile = tileFor(r, M);
  const tiles = ceilDiv(M, tile.tm) * ceilDiv(N, tile.tn);
  const kTiles = ceilDiv(K, tile.tk);
  const wanted = Math.max(
    1,
    Math.min(
      ceilDiv(2 * r.wave, tiles), // fewer tiles than fill the device get their K split
      Math.floor(kTiles / MIN_K_TILES_PER_SPLIT),
    ),
  );
  const kTilesPerSplit = ceilDiv(kTiles, wanted);
  const splits = ceilDiv(kTiles, kTilesPerSplit); // recounted so that no split is left empty
  const s = { ...kernelSpec(r, g, M), accumulate: !!o.accumulate, split: splits > 1 };
  const key = `conv2dWeightGrad:${specKey(s)}`;
  if (splits === 1) {
    runGemm(r, `${key}:${+s.accumulate}`, () => conv2dWeightGradWgsl(s), [x, gradOut, gradW], M, N, K, g);
    return;
  }
  const partial = scratchBuffer(r, splits * M * N * 4);
  runGemm(r, `${key}:split`, () => conv2dWeightGradWgsl(s), [x, gradOut, partial], M, N, K, g, splits, kTilesPerSplit);
  r.run({
    key: `conv2dSplitReduce:${+s.accumulate}`,
    wgsl: () => conv2dSplitReduceWgsl(s.accumulate),
    buffers: [partial, gradW],
    params: [M * N, splits],
    workgroups: ceilDiv(M * N, WG),
  });
}

/** gradB = dL/db, [Cout]: gradOut summed over batch and space. */
export function conv2dBiasGrad(r: KernelRunner, gradOut: GPUBuffer, gradB: GPUBuffer, o: Conv2dGradOptions) {
  const g = conv2dGeometry(o);
  const accumulate = !!o.accumulate;
  r.run({
    key: `conv2dBiasGrad:${+accumulate}`,
    wgsl: () => conv2dBiasGradWgsl(accumulate),
    buffers: [gradOut, gradB],
    params: [g.batch, g.cout, g.hOut * g.wOut],
    workgroups: g.cout,
  });
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
