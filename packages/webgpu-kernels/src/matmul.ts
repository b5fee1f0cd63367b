/**
 * Batched matrix multiplication C = alpha·op(A)·op(B) with a fused epilogue (bias, activation, residual,
 * accumulate), a split-K path for small outputs over a long K, and the CPU reference.
 *
 * Tiled kernel: a workgroup computes a tileM×tileN block of C. Each K step stages a tileK slice of A and B in
 * workgroup memory, stored K-major so a thread reads its rows and columns as vec4s. There are two stages:
 * the global loads of step t+1 go to registers before the math of step t and land in the other stage after
 * it, which hides their latency and needs one barrier per step. Each thread owns microM×microN accumulators;
 * its rows (and columns) come in 4-wide groups, group g at `g·tile/groups + 4·thread`, so the vec4 reads of
 * one K row by neighbouring threads are contiguous and free of bank conflicts. Results leave through workgroup
 * memory so that stores are coalesced. Only the activation is baked into a pipeline; bias, residual and
 * accumulate are uniform flags, which keeps pipelines (each a second or more of compilation on lavapipe) few.
 *
 * Split-K: the K range is cut into `splits` chunks; the same kernel writes each chunk's raw product to a
 * scratch buffer laid out [batch][split][M][N], and a reduction kernel sums the chunks and applies the
 * epilogue. The scratch buffer belongs to the runner (see `scratchFor`), so callers never manage it.
 */
import { ERF_WGSL, UNARY } from "./elementwise.ts";
import { FOLDED_INDEX, type KernelRunner } from "./runner.ts";

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

/** Everything baked into one tiled-kernel pipeline; bias, residual and accumulate are run-time flags. */
export interface MatmulSpec {
  tileM: number;
  tileN: number;
  tileK: number;
  /** Accumulators per thread along M and N; multiples of 4. */
  microM: number;
  microN: number;
  /** K rows written out straight-line per iteration of the inner loop; divides tileK. */
  unrollK: number;
  /**
   * Pad each K row of a K-contiguous operand's stage by one vec4: its loads run along K and are stored
   * transposed, which without padding hits one bank 16 times per warp.
   */
  padK: boolean;
  transA: boolean;
  transB: boolean;
  /** Load A (B) as vec4 along its contiguous dimension; needs that dimension to be a multiple of 4. */
  vecA: boolean;
  vecB: boolean;
  activation: MatmulActivation;
  /** The barrier-free kernel for CPU drivers; the tile fields then only describe its 64×64 block. */
  direct?: boolean;
}

export interface MatmulPlan {
  spec: MatmulSpec;
  /** K chunks; 1 means one pass straight into C. */
  splits: number;
  /** K elements per chunk, a multiple of tileK. */
  kChunk: number;
}

export const matmulFlops = (o: MatmulOptions<unknown>) => 2 * (o.batch ?? 1) * o.m * o.n * o.k;

/**
 * Block shapes, largest first; the first two use 256 threads. Only the large one uses vec4 loads: they save a few load
 * instructions per thousand FMAs, which matters for big products and not enough for small ones to pay for a
 * second pipeline (and its compile time) per transpose.
 */
const TILES = [
  { tileM: 128, tileN: 128, microM: 8, microN: 8, vectorLoads: true },
  { tileM: 64, tileN: 64, microM: 4, microN: 4, vectorLoads: false },
  // 64 threads: for products too small to fill a GPU, and on CPU drivers, where every workgroup barrier
  // costs a pass over all its invocations (on lavapipe a 308×32×32 product ran 2× faster than with 64×64).
  { tileM: 32, tileN: 32, microM: 4, microN: 4, vectorLoads: false },
] as const;
/** Least K per split-K chunk, so each chunk's math outweighs writing and re-reading its partial product. */
const MIN_CHUNK = 256;
const MAX_SPLITS = 32;
const REDUCE_WG = 256;
/**
 * K rows per inner-loop iteration: enough straight-line code for a GPU compiler to schedule shared-memory
 * reads under the FMAs, little enough for lavapipe, whose compile time grows fast with unrolling.
 */
const UNROLL_K = 4;
/** Outputs per invocation along M and N in the direct (CPU-driver) kernel: a 64×64 block per workgroup (faster than 4×4 on lavapipe). */
const DIRECT_MICRO = 8;

/** Epilogue steps switched by a uniform, so they cost no extra pipelines. */
const BIAS = 1,
  RESIDUAL = 2,
  ACCUMULATE = 4;
const epilogueFlags = (o: MatmulOptions) =>
  (o.bias ? BIAS : 0) | (o.residual ? RESIDUAL : 0) | (o.accumulate ? ACCUMULATE : 0);

export const matmulSpecKey = (s: MatmulSpec) =>
  `matmul:${s.tileM}x${s.tileN}x${s.tileK}${s.padK ? "p" : ""}:${s.microM}x${s.microN}u${s.unrollK}:${s.transA ? "t" : "n"}${s.transB ? "t" : "n"}:${s.vecA ? 4 : 1}${s.vecB ? 4 : 1}:${s.activation}${s.direct ? ":direct" : ""}`;

/** Chooses the block shape from the output size and the workgroup-storage limit, and split-K from the shape. */
/** `wave`: workgroups that keep the device busy (KernelRunner.wave); below it, smaller tiles and split-K pay. */
/** `direct`: the barrier-free 64×64 kernel for CPU drivers (matmulDirectWgsl). */
export function planMatmul(
  limits: Record<string, number>,
  o: MatmulOptions<unknown>,
  wave = 128,
  direct = false,
): MatmulPlan {
  const { m, n, k, batch = 1, transA = false, transB = false } = o;
  if (direct) return planDirect(o, wave);
  const storage = limits.maxComputeWorkgroupStorageSize ?? 16384;
  const blocks = (t: { tileM: number; tileN: number }) => batch * Math.ceil(m / t.tileM) * Math.ceil(n / t.tileN);
  const shapes = TILES.flatMap((t) => {
    const threads = (t.tileM / t.microM) * (t.tileN / t.microN);
    // Largest K step whose two stages fit (padded if there is room) and that every thread loads in whole vec4s.
    for (const tileK of [16, 8]) {
      if (((t.tileM * tileK) / 4) % threads || ((t.tileN * tileK) / 4) % threads) continue;
      for (const padK of [true, false]) {
        if (2 * tileK * (t.tileM + t.tileN + (padK ? 8 : 0)) * 4 <= storage) return [{ ...t, tileK, padK }];
      }
    }
    return [];
  });
  if (!shapes.length) throw new Error(`matmul: workgroup storage of ${storage} bytes is too small for any tile`);
  const { vectorLoads, ...tile } = shapes.find((t) => blocks(t) >= wave) ?? shapes[shapes.length - 1]!;

  let splits = o.splitK ?? 1;
  if (o.splitK === undefined && blocks(tile) < wave && k >= 2 * MIN_CHUNK) {
    splits = Math.min(Math.ceil(wave / blocks(tile)), Math.floor(k / MIN_CHUNK), MAX_SPLITS);
  }
  // Whole K steps per chunk, and no empty chunk.
  const kChunk = Math.max(tile.tileK, Math.ceil(k / Math.max(1, splits) / tile.tileK) * tile.tileK);
  splits = Math.max(1, Math.ceil(k / kChunk));
  const spec: MatmulSpec = {
    ...tile,
    unrollK: UNROLL_K,
    transA,
    transB,
    vecA: vectorLoads && (transA ? m : k) % 4 === 0,
    vecB: vectorLoads && (transB ? k : n) % 4 === 0,
    // Split-K partial products are raw; the reduction applies the epilogue.
    activation: splits > 1 ? "none" : (o.activation ?? "none"),
  };
  return { spec, splits, kChunk };
}

function planDirect(o: MatmulOptions<unknown>, wave: number): MatmulPlan {
  const { m, n, k, batch = 1, transA = false, transB = false } = o;
  const side = 8 * DIRECT_MICRO,
    blocks = batch * Math.ceil(m / side) * Math.ceil(n / side);
  let splits =
    o.splitK ??
    (blocks < wave && k >= 2 * MIN_CHUNK
      ? Math.min(Math.ceil(wave / blocks), Math.floor(k / MIN_CHUNK), MAX_SPLITS)
      : 1);
  const kChunk = Math.ceil(k / Math.max(1, splits));
  splits = Math.max(1, Math.ceil(k / kChunk));
  const spec: MatmulSpec = {
    tileM: side,
    tileN: side,
    tileK: 1,
    microM: DIRECT_MICRO,
    microN: DIRECT_MICRO,
    unrollK: 1,
    padK: false,
    transA,
    transB,
    vecA: false,
    vecB: false,
    activation: splits > 1 ? "none" : (o.activation ?? "none"),
    direct: true,
  };
  return { spec, splits, kChunk };
}

/**
 * Declares the bias and residual bindings (`firstBinding`, `firstBinding + 1`; bound to a stand-in when
 * unused) and `epilogue(acc, i, col)` for element `i` of the output binding `out` in column `col`:
 * alpha·acc → + bias → activation → + residual → + old C, the additions switched by `p.flags`.
 */
function epilogueWgsl(activation: MatmulActivation, firstBinding: number): string {
  const act = activation === "none" ? "" : UNARY[activation].wgsl;
  return /* wgsl */ `
    @group(0) @binding(${firstBinding}) var<storage, read> bias: array<f32>;
    @group(0) @binding(${firstBinding + 1}) var<storage, read> residual: array<f32>;
    ${activation === "gelu" ? ERF_WGSL : ""}
    fn epilogue(acc: f32, i: u32, col: u32) -> f32 {
      var v = p.alpha * acc;
      if ((p.flags & ${BIAS}u) != 0u) { v += bias[col]; }
      ${act ? `{ let x = v; v = ${act}; }` : ""}
      if ((p.flags & ${RESIDUAL}u) != 0u) { v += residual[i]; }
      if ((p.flags & ${ACCUMULATE}u) != 0u) { v += out[i]; }
      return v;
    }`;
}

/** The tiled kernel. Grid: [N blocks, M blocks, batch·splits]; Params as in `matmul`. */
export function matmulWgsl(s: MatmulSpec): string {
  const { tileM, tileN, tileK, microM, microN } = s;
  if (microM % 4 || microN % 4 || tileM % microM || tileN % microN || tileK % s.unrollK)
    throw new Error(`matmul: bad tile shape in ${matmulSpecKey(s)}`);
  const tx = tileN / microN,
    ty = tileM / microM,
    threads = tx * ty;
  const groupsM = microM / 4,
    groupsN = microN / 4;
  // Workgroup memory, in vec4s: two stages of A (K-major, [tileK][tileM], rows `strideA` apart) then two of B;
  // the epilogue reuses it for blocks of C.
  const strideA = tileM / 4 + (s.padK && !s.transA ? 1 : 0),
    strideB = tileN / 4 + (s.padK && s.transB ? 1 : 0);
  const sizeA = 2 * tileK * strideA,
    sizeB = 2 * tileK * strideB;

  // A and B share one code path: an operand has an outer dimension (M for A, N for B) and the contraction K.
  const operand = (
    name: "a" | "b",
    dim: string,
    origin: string,
    tile: number,
    offset: number,
    stride: number,
    contiguousK: boolean,
    vec: boolean,
  ) => {
    const width = vec ? 4 : 1;
    const loads = (tile * tileK) / threads / width;
    if (!Number.isInteger(loads))
      throw new Error(`matmul: ${name} tile does not split evenly over ${threads} threads in ${matmulSpecKey(s)}`);
    const type = vec ? "vec4<f32>" : "f32";
    const perRow = (contiguousK ? tileK : tile) / width; // loads along one contiguous run of the tile
    const at = (k: string) => `S[${offset}u + (fill * ${tileK}u + ${k}) * ${stride}u + d / 4u]`;
    // Thread `lid`'s j-th load: consecutive threads take consecutive addresses, so loads coalesce.
    const coords = (j: number) =>
      `let l = ${j * threads}u + lid; let c = (l % ${perRow}u) * ${width}u; let o = l / ${perRow}u; ${contiguousK ? "let d = o; let k = c;" : "let d = c; let k = o;"}`;
    const stash = (j: number) =>
      contiguousK && vec
        ? Array.from({ length: 4 }, (_, i) => `${at(`k + ${i}u`)}[d % 4u] = r${name}[${j}].${"xyzw"[i]};`).join(" ")
        : vec
          ? `${at("k")} = r${name}[${j}];`
          : `${at("k")}[d % 4u] = r${name}[${j}];`;
    return {
      binding: `var<storage, read> ${name}: array<${type}>;`,
      load: `fn load_${name}(base: u32, d: u32, k: u32, kEnd: u32) -> ${type} {
          if (d >= ${dim} || k >= kEnd) { return ${type}(); }
          return ${name}[(base + ${contiguousK ? `d * p.k + k` : `k * ${dim} + d`}) / ${width}u];
        }`,
      regs: `var r${name}: array<${type}, ${loads}>;`,
      fetch: Array.from(
        { length: loads },
        (_, j) => `{ ${coords(j)} r${name}[${j}] = load_${name}(base_${name}, ${origin} + d, k0 + k, kEnd); }`,
      ).join("\n"),
      stash: Array.from({ length: loads }, (_, j) => `{ ${coords(j)} ${stash(j)} }`).join("\n"),
    };
  };
  const A = operand("a", "p.m", "row0", tileM, 0, strideA, !s.transA, s.vecA);
  const B = operand("b", "p.n", "col0", tileN, sizeA, strideB, s.transB, s.vecB);

  // One K row of the ready stage: this thread's A groups times its B groups, as vec4 outer products.
  const row = (u: number) =>
    [
      `let ka${u} = (ready * ${tileK}u + kk + ${u}u) * ${strideA}u;`,
      `let kb${u} = ${sizeA}u + (ready * ${tileK}u + kk + ${u}u) * ${strideB}u;`,
      ...Array.from({ length: groupsM }, (_, g) => `let a${g} = S[ka${u} + ${g * ty}u + ty];`),
      ...Array.from({ length: groupsN }, (_, g) => `let b${g} = S[kb${u} + ${g * tx}u + tx];`),
      ...Array.from({ length: microM * groupsN }, (_, i) => {
        const r = Math.floor(i / groupsN),
          gn = i % groupsN;
        return `acc[${i}] += a${Math.floor(r / 4)}.${"xyzw"[r % 4]} * b${gn};`;
      }),
    ].join("\n");
  const rows = Array.from({ length: s.unrollK }, (_, u) => `{\n${row(u)}\n}`).join("\n");

  // The epilogue goes through workgroup memory a block at a time: a row group of every thread's accumulators
  // (all column groups when the block fits in the stage memory, else one) is a [4·ty][width] block of C.
  // This makes the stores (and residual reads) coalesced and keeps a single copy of the epilogue code per
  // block; blocks are few because each costs lavapipe about a second of compilation.
  const colsPerBlock = (16 * ty * tx * groupsN) / 4 <= sizeA + sizeB ? groupsN : 1,
    width = 4 * tx * colsPerBlock;
  const blocks = Array.from({ length: (groupsM * groupsN) / colsPerBlock }, (_, q) => {
    const g = Math.floor((q * colsPerBlock) / groupsN),
      gn0 = (q * colsPerBlock) % groupsN;
    const writes = Array.from({ length: 4 * colsPerBlock }, (_, w) => {
      const i = w % 4,
        gn = gn0 + Math.floor(w / 4);
      return `S[(ty * 4u + ${i}u) * ${width / 4}u + ${(gn - gn0) * tx}u + tx] = acc[${(g * 4 + i) * groupsN + gn}];`;
    });
    return `
      ${q > 0 ? "workgroupBarrier();" : ""}
      ${writes.join("\n")}
      workgroupBarrier();
      for (var e = lid; e < ${4 * ty * width}u; e += ${threads}u) {
        let row = row0 + ${g * 4 * ty}u + e / ${width}u;
        let col = col0 + ${gn0 * 4 * tx}u + e % ${width}u;
        if (row < p.m && col < p.n) {
          let i = (z * p.m + row) * p.n + col;
          out[i] = epilogue(S[e / 4u][e % 4u], i, col);
        }
      }`;
  }).join("\n");

  return /* wgsl */ `
    struct Params { m: u32, n: u32, k: u32, splits: u32, kChunk: u32, strideB: u32, alpha: f32, tileK: u32, flags: u32 }
    @group(0) @binding(0) var<uniform> p: Params;
    @group(0) @binding(1) ${A.binding}
    @group(0) @binding(2) ${B.binding}
    @group(0) @binding(3) var<storage, read_write> out: array<f32>;
    ${epilogueWgsl(s.activation, 4)}
    var<workgroup> S: array<vec4<f32>, ${Math.max(sizeA + sizeB, (4 * ty * width) / 4)}>;
    ${A.load}
    ${B.load}

    @compute @workgroup_size(${threads})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      let z = wid.z;
      let kBegin = (z % p.splits) * p.kChunk;
      let kEnd = min(p.k, kBegin + p.kChunk);
      let base_a = (z / p.splits) * p.m * p.k;
      let base_b = (z / p.splits) * p.strideB;
      let row0 = wid.y * ${tileM}u;
      let col0 = wid.x * ${tileN}u;
      let tx = lid % ${tx}u;
      let ty = lid / ${tx}u;
      let steps = (kEnd - kBegin + ${tileK - 1}u) / ${tileK}u;
      var acc: array<vec4<f32>, ${microM * groupsN}>;
      ${A.regs}
      ${B.regs}

      var k0 = kBegin;
      var fill = 0u;
      ${A.fetch}
      ${B.fetch}
      ${A.stash}
      ${B.stash}
      workgroupBarrier();
      // Step t: fetch step t+1 into registers, multiply step t out of one stage, store step t+1 into the other.
      // The fetch is in flight during the math, and one barrier per step keeps the stages apart.
      for (var t = 0u; t < steps; t++) {
        let more = t + 1u < steps;
        let ready = fill;
        fill = 1u - fill;
        if (more) {
          k0 += ${tileK}u;
          ${A.fetch}
          ${B.fetch}
        }
        // The bound is a uniform on purpose: lavapipe fully unrolls constant-bound loops and then compiles
        // several times slower for no speed-up; GPU compilers still get unrollK rows of straight-line code.
        for (var kk = 0u; kk < p.tileK; kk += ${s.unrollK}u) {
          ${rows}
        }
        if (more) {
          ${A.stash}
          ${B.stash}
        }
        workgroupBarrier();
      }
      ${blocks}
    }`;
}

/**
 * For CPU drivers: no workgroup memory and no barriers (on lavapipe each barrier is a pass over all of a
 * workgroup's invocations). Invocation (tx, ty) of an 8×8 workgroup owns rows row0 + ty + 8i and columns
 * col0 + tx + 8j of a 64×64 block, so neighbouring invocations (SIMD lanes) read neighbouring columns of B.
 * Same Params, grid and split-K layout as the tiled kernel.
 */
export function matmulDirectWgsl(transA: boolean, transB: boolean, activation: MatmulActivation): string {
  const range = Array.from({ length: DIRECT_MICRO }, (_, i) => i);
  const cells = range.flatMap((i) => range.map((j) => [i, j] as const));
  return /* wgsl */ `
    struct Params { m: u32, n: u32, k: u32, splits: u32, kChunk: u32, strideB: u32, alpha: f32, tileK: u32, flags: u32 }
    @group(0) @binding(0) var<uniform> p: Params;
    @group(0) @binding(1) var<storage, read> a: array<f32>;
    @group(0) @binding(2) var<storage, read> b: array<f32>;
    @group(0) @binding(3) var<storage, read_write> out: array<f32>;
    ${epilogueWgsl(activation, 4)}
    @compute @workgroup_size(64)
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      let z = wid.z;
      let kBegin = (z % p.splits) * p.kChunk;
      let kEnd = min(p.k, kBegin + p.kChunk);
      let baseA = (z / p.splits) * p.m * p.k;
      let baseB = (z / p.splits) * p.strideB;
      let row0 = wid.y * ${8 * DIRECT_MICRO}u + lid / 8u;
      let col0 = wid.x * ${8 * DIRECT_MICRO}u + lid % 8u;
      let stepA = ${transA ? "p.m" : "1u"}; let stepB = ${transB ? "1u" : "p.n"};
      ${range.map((i) => `var ia${i} = baseA + ${transA ? `kBegin * p.m + min(row0 + ${8 * i}u, p.m - 1u)` : `min(row0 + ${8 * i}u, p.m - 1u) * p.k + kBegin`};`).join(" ")}
      ${range.map((j) => `var ib${j} = baseB + ${transB ? `min(col0 + ${8 * j}u, p.n - 1u) * p.k + kBegin` : `kBegin * p.n + min(col0 + ${8 * j}u, p.n - 1u)`};`).join(" ")}
      ${cells.map(([i, j]) => `var acc${i}_${j} = 0.0;`).join(" ")}
      for (var k = kBegin; k < kEnd; k++) {
        ${range.map((i) => `let a${i} = a[ia${i}]; ia${i} += stepA;`).join(" ")}
        ${range.map((j) => `let b${j} = b[ib${j}]; ib${j} += stepB;`).join(" ")}
        ${cells.map(([i, j]) => `acc${i}_${j} += a${i} * b${j};`).join(" ")}
      }
      // One copy of the epilogue in a loop, not one per accumulator: lavapipe compiled the 64 inlined copies in
      // about a minute per kernel (2 s this way), the bulk of a cold start on a fresh machine.
      var accs: array<f32, ${DIRECT_MICRO * DIRECT_MICRO}>;
      ${cells.map(([i, j]) => `accs[${i * DIRECT_MICRO + j}] = acc${i}_${j};`).join(" ")}
      for (var q = 0u; q < ${DIRECT_MICRO * DIRECT_MICRO}u; q++) {
        let row = row0 + 8u * (q / ${DIRECT_MICRO}u); let col = col0 + 8u * (q % ${DIRECT_MICRO}u);
        if (row < p.m && col < p.n) { let e = (z * p.m + row) * p.n + col; out[e] = epilogue(accs[q], e, col); }
      }
    }`;
}

/** Sums split-K partials [batch][split][M·N] and applies the epilogue; one thread per element of C. */
function reduceWgsl(activation: MatmulActivation): string {
  return /* wgsl */ `
    struct Params { total: u32, mn: u32, n: u32, splits: u32, alpha: f32, flags: u32 }
    @group(0) @binding(0) var<uniform> p: Params;
    @group(0) @binding(1) var<storage, read> partial: array<f32>;
    @group(0) @binding(2) var<storage, read_write> out: array<f32>;
    ${epilogueWgsl(activation, 3)}
    ${FOLDED_INDEX}
    @compute @workgroup_size(${REDUCE_WG})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      let i = foldedIndex(wid, nwg) * ${REDUCE_WG}u + lid;
      if (i >= p.total) { return; }
      let first = (i / p.mn) * p.splits * p.mn + i % p.mn;
      var sum = 0.0;
      for (var s = 0u; s < p.splits; s++) { sum += partial[first + s * p.mn]; }
      out[i] = epilogue(sum, i, i % p.n);
    }`;
}

/**
 * Split-K scratch: one buffer per runner, grown on demand and reused by every split-K matmul (dispatches run
 * in order, so reuse within a batch is safe). An outgrown buffer may still be used by commands not yet
 * submitted, so it is destroyed on a later call once `r.batch` has moved past the batch it was retired in.
 */
interface Scratch {
  buffer: GPUBuffer;
  retired: { buffer: GPUBuffer; batch: number }[];
}
const scratch = new WeakMap<KernelRunner, Scratch>();

function scratchFor(r: KernelRunner, bytes: number): GPUBuffer {
  const s = scratch.get(r);
  if (s) {
    for (const old of s.retired) if (old.batch < r.batch) old.buffer.destroy();
    s.retired = s.retired.filter((old) => old.batch >= r.batch);
    if (s.buffer.size >= bytes) return s.buffer;
  }
  const buffer = r.device.createBuffer({
    size: Math.ceil(bytes / 16) * 16,
    usage: GPUBufferUsage.STORAGE,
    label: "matmul split-K scratch",
  });
  if (s) {
    s.retired.push({ buffer: s.buffer, batch: r.batch });
    s.buffer = buffer;
  } else scratch.set(r, { buffer, retired: [] });
  return buffer;
}

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

  const { spec, splits, kChunk } = planMatmul(r.limits, o, r.wave, r.cpu);
  const split = splits > 1;
  const target = split ? scratchFor(r, splits * batch * m * n * 4) : out;
  // Unused bias and residual bindings get a read-only stand-in; the flags keep them unread.
  const epilogue = (standIn: GPUBuffer) => [o.bias ?? standIn, o.residual ?? standIn];
  r.run({
    key: matmulSpecKey(spec),
    wgsl: () => (spec.direct ? matmulDirectWgsl(spec.transA, spec.transB, spec.activation) : matmulWgsl(spec)),
    buffers: [a, b, target, ...epilogue(a)],
    params: [
      m,
      n,
      k,
      splits,
      kChunk,
      o.broadcastB ? 0 : k * n,
      { f32: split ? 1 : alpha },
      spec.tileK,
      split ? 0 : epilogueFlags(o),
    ],
    workgroups: [Math.ceil(n / spec.tileN), Math.ceil(m / spec.tileM), batch * splits],
  });
  if (!split) return;
  const activation = o.activation ?? "none";
  r.run({
    key: `matmul-reduce:${activation}`,
    wgsl: () => reduceWgsl(activation),
    buffers: [target, out, ...epilogue(target)],
    params: [batch * m * n, m * n, n, splits, { f32: alpha }, epilogueFlags(o)],
    workgroups: Math.ceil((batch * m * n) / REDUCE_WG),
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
