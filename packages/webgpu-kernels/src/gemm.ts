/**
 * The one GEMM generator: C[z][m][n] = Σ_k A(z, m, k) · B(z, k, n) for matmul, the convolution and both of its
 * gradients. A client says how to read A and B and how to write C, as WGSL hooks; the engine owns the loop
 * structure, the tiling, split-K and the choice of kernel for the device.
 *
 * Hooks (WGSL, from the client's `loads` and `store`): `struct ARow` and `fn aRow(z, m) -> ARow` hold per-row work
 * hoisted out of the K loop, `fn aLoad(r: ARow, k) -> f32` reads A; `BCol`, `bCol(z, n)` and `bLoad(c, k)` do the
 * same for B's columns. Where the spec asks for vec4 loads (`vecA`/`vecB`), `aLoad4(r, k)` (`bLoad4`) reads four
 * consecutive elements along the operand's contiguous axis instead: k…k+3 when it runs along K, else rows
 * (columns) m…m+3 for the `ARow` of m. Loads are only called inside the operand. `fn store(z, m, n, v)` is the
 * epilogue: it writes the output, reading the optional epilogue inputs (bias, residual) the spec lists in
 * `epilogue`; each set of present inputs is its own kernel, so no binding is ever a stand-in.
 *
 * The kernel is chosen from the runner (`r.cpu`, `r.subgroups`):
 * - tiled (GPUs): a workgroup computes a tileM×tileN block, staging tileK slices of A and B in workgroup memory,
 *   K-major so that a thread reads its rows and columns as vec4s. Two stages: the global loads of step t+1 go to
 *   registers before the math of step t and land in the other stage after it, one barrier per step. Each thread
 *   owns microM×microN accumulators in 4-wide groups, group g at `g·tile/groups + 4·thread`, so neighbouring
 *   threads read neighbouring vec4s. Results leave through workgroup memory so that stores are coalesced.
 * - direct (CPU drivers such as lavapipe): no workgroup memory and no barriers (each barrier there is a pass over
 *   all of a workgroup's invocations). On lavapipe (Mesa 25.0) every storage load is a per-lane loop with a
 *   bounds check, whether or not its address is uniform (seen in GALLIVM_DEBUG=asm), so the speed comes from
 *   the multiply-adds per element loaded per lane. With subgroups, the workgroup shares its rows of A: each lane
 *   loads one k of each row and the subgroup passes the values round by shuffles, so a lane loads 1/8 of an A
 *   element per row and k (lavapipe's subgroups are 8 wide) and one B element per column; without subgroups,
 *   invocation (tx, ty) of an 8×8 workgroup owns rows m0 + ty + 8i and columns n0 + tx + 8j.
 *
 * Split-K: for outputs too small to fill the device over a long K, each of `splits` workgroup layers sums one K
 * chunk into a runner-owned scratch buffer ([z][split][M][N]) and one reduction sums the chunks and runs the
 * client's epilogue.
 */
import { defineKernel, type ElementType, type Spec, type UniformType } from "./kernel.ts";
import { FOLDED_INDEX, type KernelRunner } from "./runner.ts";

/** Everything about the loop structure that is baked into a pipeline. */
export type GemmTile = {
  /** Outputs per workgroup along M and N. */
  tileM: number;
  tileN: number;
  /** K per workgroup-memory stage (tiled kernel); 1 in the direct kernel. */
  tileK: number;
  /** Accumulators per invocation along M and N (multiples of 4 in the tiled kernel). */
  microM: number;
  microN: number;
  /** K rows written out straight-line per iteration of the inner loop. */
  unrollK: number;
  /**
   * Pad each K row of a K-contiguous operand's stage by one vec4: its loads run along K and are stored
   * transposed, which without padding hits one bank 16 times per warp.
   */
  padK: boolean;
  /** The barrier-free kernel for CPU drivers. */
  direct: boolean;
  /**
   * Its subgroup form: the workgroup's invocations share microM rows and each owns microN columns 64 apart;
   * each lane loads A for one k and the subgroup shares the values by shuffles (see `shuffleBody`).
   */
  shuffle: boolean;
};

/** The engine's part of a kernel spec; a client adds its own fields (transposes, kernel size, activation). */
export type GemmSpec = {
  tile: GemmTile;
  /** Read A (B) through aLoad4 (bLoad4). */
  vecA: boolean;
  vecB: boolean;
  /** The epilogue inputs bound to this kernel, in the client's order. */
  epilogue: readonly string[];
};

export interface GemmShape {
  M: number;
  N: number;
  K: number;
  /** Independent products (a batched matmul); the operands' hooks get the index z. */
  batches: number;
}

export interface GemmPlan {
  tile: GemmTile;
  vecA: boolean;
  vecB: boolean;
  /** K chunks; 1 means one pass straight into C. */
  splits: number;
  /** K elements per chunk, a multiple of tileK. */
  kChunk: number;
}

/** The engine's uniforms; a client's own uniforms follow them in `Params`. */
const GEMM_UNIFORMS = {
  M: "u32",
  N: "u32",
  K: "u32",
  batches: "u32",
  tilesM: "u32",
  tilesN: "u32",
  splits: "u32",
  kChunk: "u32",
  tileK: "u32",
} as const satisfies Record<string, UniformType>;
type GemmUniform = keyof typeof GEMM_UNIFORMS;

/**
 * Tiled-kernel shapes, largest first; the first two use 256 threads. Only the large one uses vec4 loads: they save
 * a few load instructions per thousand FMAs, which matters for big products and not enough for small ones to pay
 * for a second pipeline (and its compile time) per transpose.
 */
const TILES = [
  { tileM: 128, tileN: 128, microM: 8, microN: 8, vectorLoads: true },
  { tileM: 64, tileN: 64, microM: 4, microN: 4, vectorLoads: false },
  // 64 threads: for products too small to fill a GPU.
  { tileM: 32, tileN: 32, microM: 4, microN: 4, vectorLoads: false },
] as const;
/** Least K per split-K chunk, so each chunk's math outweighs writing and re-reading its partial product. */
const MIN_CHUNK = 256;
const MAX_SPLITS = 32;
const REDUCE_WG = 256;
/**
 * K rows per inner-loop iteration of the tiled kernel: enough straight-line code for a GPU compiler to schedule
 * shared-memory reads under the FMAs, little enough for lavapipe, whose compile time grows fast with unrolling.
 */
const UNROLL_K = 4;
/** The direct kernel's invocation grid is SIDE×SIDE: lanes of a CPU SIMD chunk take neighbouring columns. */
const SIDE = 8;
/** Invocations of the subgroup kernel's workgroup. */
const SHUFFLE_WG = 64;

export interface PlanOptions {
  /** The client can read A (B) as vec4s for this shape (its contiguous dimension is a multiple of 4). */
  vecA?: boolean;
  vecB?: boolean;
  /** Forced number of K chunks (1 turns split-K off); chosen from the shape when absent. */
  splitK?: number;
}

/**
 * The kernel and split for a product on this device: the tiled kernel's block from the output size and the
 * workgroup-storage limit, or the direct kernel's register block on CPU drivers; split-K when the output leaves
 * the device idle (`wave`: workgroups that keep it busy) over a long K.
 */
export function planGemm(
  device: { limits: Record<string, number>; wave: number; cpu: boolean; subgroups: boolean },
  s: GemmShape,
  o: PlanOptions = {},
): GemmPlan {
  const tile = !device.cpu
    ? tiledTile(device.limits, s, device.wave)
    : device.subgroups
      ? shuffleTile(s)
      : directTile(s);
  const blocks = s.batches * Math.ceil(s.M / tile.tileM) * Math.ceil(s.N / tile.tileN);
  let splits = o.splitK ?? 1;
  if (o.splitK === undefined && blocks < device.wave && s.K >= 2 * MIN_CHUNK)
    splits = Math.min(Math.ceil(device.wave / blocks), Math.floor(s.K / MIN_CHUNK), MAX_SPLITS);
  // Whole K steps per chunk, and no empty chunk.
  const kChunk = Math.max(tile.tileK, Math.ceil(s.K / Math.max(1, splits) / tile.tileK) * tile.tileK);
  splits = Math.max(1, Math.ceil(s.K / kChunk));
  const vec = !tile.direct && tile.tileM === TILES[0].tileM;
  return { tile, vecA: vec && !!o.vecA, vecB: vec && !!o.vecB, splits, kChunk };
}

function tiledTile(limits: Record<string, number>, s: GemmShape, wave: number): GemmTile {
  const storage = limits.maxComputeWorkgroupStorageSize ?? 16384;
  const blocks = (t: { tileM: number; tileN: number }) =>
    s.batches * Math.ceil(s.M / t.tileM) * Math.ceil(s.N / t.tileN);
  const shapes = TILES.flatMap(({ vectorLoads: _, ...t }) => {
    const threads = (t.tileM / t.microM) * (t.tileN / t.microN);
    // Largest K step whose two stages fit (padded if there is room) and that every thread loads in whole vec4s.
    for (const tileK of [16, 8]) {
      if (((t.tileM * tileK) / 4) % threads || ((t.tileN * tileK) / 4) % threads) continue;
      for (const padK of [true, false]) {
        if (2 * tileK * (t.tileM + t.tileN + (padK ? 8 : 0)) * 4 <= storage)
          return [{ ...t, tileK, padK, unrollK: UNROLL_K, direct: false, shuffle: false }];
      }
    }
    return [];
  });
  if (!shapes.length) throw new Error(`gemm: workgroup storage of ${storage} bytes is too small for any tile`);
  return shapes.find((t) => blocks(t) >= wave) ?? shapes[shapes.length - 1]!;
}

/** 8×8 outputs per invocation beat 4×4, 4×8 and 8×4 on lavapipe; thin products (few rows) take fewer rows. */
function directTile(s: GemmShape): GemmTile {
  const microM = s.M <= 16 ? 2 : s.M <= 32 ? 4 : 8,
    microN = 8;
  return {
    tileM: SIDE * microM,
    tileN: SIDE * microN,
    tileK: 1,
    microM,
    microN,
    unrollK: 1,
    padK: false,
    direct: true,
    shuffle: false,
  };
}

/**
 * Rows × columns per invocation of the subgroup kernel, from a cost model of lavapipe: per output and k, a lane
 * loads (rows/8 + columns)/(rows·columns) elements (about 8 instructions each: a per-lane loop with a bounds check)
 * and does one multiply-add (mul, add and an exec-mask blend for 8 lanes), over the output padded to whole blocks.
 * 24 × 4 ran a 512³ product about 1.5× faster than the 8×8 direct kernel (CPU time); bigger blocks spill or compile
 * for several seconds. Thin or narrow products take smaller blocks, which waste less.
 */
function shuffleTile(s: GemmShape): GemmTile {
  const cost = (rows: number, cols: number) =>
    Math.ceil(s.M / rows) *
    rows *
    Math.ceil(s.N / (SHUFFLE_WG * cols)) *
    SHUFFLE_WG *
    cols *
    ((8 * (rows / 8 + cols)) / (rows * cols) + 0.4);
  let [microM, microN] = [4, 1];
  for (const rows of [4, 8, 16, 24])
    for (const cols of [1, 2, 4]) if (cost(rows, cols) < cost(microM, microN)) [microM, microN] = [rows, cols];
  return {
    tileM: microM,
    tileN: SHUFFLE_WG * microN,
    tileK: 1,
    microM,
    microN,
    unrollK: 1,
    padK: false,
    direct: true,
    shuffle: true,
  };
}

export interface GemmClient<
  S extends Spec,
  Op extends string,
  Ep extends string,
  Out extends string,
  U extends string,
> {
  name: string;
  /** The buffers A and B are read from, with their element types (which may follow the spec's vecA/vecB). */
  operands: Record<Op, ElementType | ((spec: S & GemmSpec) => ElementType)>;
  /** Optional buffers the epilogue reads, in binding order. */
  epilogueInputs: readonly Ep[];
  /** The output C. */
  output: Out;
  /** The client's uniforms, after the engine's in `Params`. */
  uniforms: Record<U, UniformType>;
  /** Consecutive K of A (B) are adjacent in memory: the tiled kernel gathers along K and vec4 loads run along K. */
  aAlongK: (spec: S) => boolean;
  bAlongK: (spec: S) => boolean;
  /** The load hooks (see the header). */
  loads: (spec: S & GemmSpec) => string;
  /** `fn store(z: u32, m: u32, n: u32, v: f32)`, reading only the epilogue inputs in `spec.epilogue`. */
  store: (spec: S & GemmSpec) => string;
}

export interface GemmLaunch<Op extends string, Ep extends string, U extends string> {
  operands: Record<Op, GPUBuffer>;
  /** The epilogue inputs to use; absent ones are not bound. */
  epilogue?: Partial<Record<Ep, GPUBuffer>>;
  output: GPUBuffer;
  uniforms: Record<U, number>;
}

export interface Gemm<S extends Spec, Op extends string, Ep extends string, U extends string> {
  /** The complete WGSL of the main kernel for `spec` (for inspection and tests). */
  wgsl(spec: S & GemmSpec): string;
  /** Records the product: one dispatch, or the split-K pass and its reduction. */
  run(r: KernelRunner, spec: S, shape: GemmShape, plan: GemmPlan, launch: GemmLaunch<Op, Ep, U>): void;
}

type AnyKernel = ReturnType<typeof defineKernel<Spec, string, string, string>>;

/** Defines a client's kernels: one per set of epilogue inputs, the split-K partial products and the reduction. */
export function defineGemm<S extends Spec, Op extends string, Ep extends string, Out extends string, U extends string>(
  client: GemmClient<S, Op, Ep, Out, U>,
): Gemm<S, Op, Ep, U> {
  type Full = S & GemmSpec;
  const uniforms = { ...GEMM_UNIFORMS, ...client.uniforms } as Record<GemmUniform | U, UniformType>;
  for (const u of Object.keys(client.uniforms))
    if (u in GEMM_UNIFORMS) throw new Error(`gemm ${client.name}: uniform "${u}" is the engine's own`);
  const pick = (spec: Full) =>
    Object.fromEntries(spec.epilogue.map((e) => [e, "f32" as ElementType])) as Record<string, ElementType>;
  const suffix = (spec: Full) => spec.epilogue.map((e) => `+${e}`).join("");

  // One kernel per epilogue-input set, made on first use.
  const kernels = new Map<string, AnyKernel>();
  const kernel = (kind: "gemm" | "partials" | "reduce", spec: Full): AnyKernel => {
    const name = `${client.name}${kind === "gemm" ? "" : kind === "partials" ? "Partials" : "SplitReduce"}${kind === "partials" ? "" : suffix(spec)}`;
    let k = kernels.get(name);
    if (!k) {
      const epilogueInputs = kind === "partials" ? {} : pick(spec);
      k = defineKernel<Spec, string, string, string>({
        name,
        inputs: kind === "reduce" ? { partials: "f32", ...epilogueInputs } : { ...client.operands, ...epilogueInputs },
        outputs: kind === "partials" ? { partials: "f32" } : { [client.output]: "f32" },
        uniforms,
        enables: (s) => ((s as Full).tile.shuffle ? ["subgroups"] : []),
        body: (s) => {
          const full = s as Full;
          if (kind === "reduce") return `${client.store(full)}\n${reduceBody()}`;
          const emit =
            kind === "gemm" ? "store(z, m, n, v);" : "partials[((z * p.splits + split) * p.M + m) * p.N + n] = v;";
          const loads = client.loads(full);
          const epilogue = kind === "gemm" ? client.store(full) : "";
          const main = full.tile.shuffle
            ? shuffleBody(full.tile, emit)
            : full.tile.direct
              ? directBody(full.tile, emit)
              : tiledBody(full, client.aAlongK(full), client.bAlongK(full), emit);
          return `${loads}\n${epilogue}\n${main}`;
        },
      }) as AnyKernel;
      kernels.set(name, k);
    }
    return k;
  };

  return {
    wgsl: (spec) => kernel("gemm", spec).wgsl(spec),
    run(r, clientSpec, shape, plan, launch) {
      const { M, N, K, batches } = shape;
      if (M * N * batches === 0) return;
      const present = client.epilogueInputs.filter((e) => launch.epilogue?.[e]);
      const spec = { ...clientSpec, tile: plan.tile, vecA: plan.vecA, vecB: plan.vecB, epilogue: present } as Full;
      const epilogueBuffers = Object.fromEntries(present.map((e) => [e, launch.epilogue![e]!]));
      const tilesM = Math.ceil(M / plan.tile.tileM),
        tilesN = Math.ceil(N / plan.tile.tileN);
      const u = {
        ...launch.uniforms,
        M,
        N,
        K,
        batches,
        tilesM,
        tilesN,
        splits: plan.splits,
        kChunk: plan.kChunk,
        tileK: plan.tile.tileK,
      };
      const workgroups = tilesM * tilesN * batches * plan.splits;
      if (plan.splits === 1) {
        kernel("gemm", spec).run(r, spec, {
          buffers: { ...launch.operands, ...epilogueBuffers, [client.output]: launch.output },
          uniforms: u,
          workgroups,
        });
        return;
      }
      const partials = r.scratch("gemm split-K", plan.splits * batches * M * N * 4);
      kernel("partials", spec).run(r, spec, {
        buffers: { ...launch.operands, partials },
        uniforms: u,
        workgroups,
      });
      kernel("reduce", spec).run(r, spec, {
        buffers: { partials, ...epilogueBuffers, [client.output]: launch.output },
        uniforms: u,
        workgroups: Math.ceil((batches * M * N) / REDUCE_WG),
      });
    },
  };
}

/** Sums the split-K partials [z][split][M·N] and runs the client's epilogue; one invocation per element of C. */
function reduceBody(): string {
  return /* wgsl */ `
    ${FOLDED_INDEX}
    @compute @workgroup_size(${REDUCE_WG})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      let i = foldedIndex(wid, nwg) * ${REDUCE_WG}u + lid;
      let mn = p.M * p.N;
      if (i >= p.batches * mn) { return; }
      let z = i / mn;
      let e = i % mn;
      let first = z * p.splits * mn + e;
      var sum = 0.0;
      for (var s = 0u; s < p.splits; s++) { sum += partials[first + s * mn]; }
      store(z, e / p.N, e % p.N, sum);
    }`;
}

/** The workgroup's place: its output block, batch z and K chunk, from the folded workgroup index. */
const PLACE = /* wgsl */ `
      let block = foldedIndex(wid, nwg);
      if (block >= p.tilesM * p.tilesN * p.batches * p.splits) { return; }
      let layer = block / (p.tilesM * p.tilesN);
      let z = layer / p.splits;
      let split = layer % p.splits;
      let kBegin = split * p.kChunk;
      let kEnd = min(p.K, kBegin + p.kChunk);`;

/**
 * The subgroup kernel: all invocations of a workgroup share rows m0…m0+microM−1 (chosen by the workgroup alone, so
 * every subgroup, of any size, shares them) and invocation l owns columns n0 + l + 64j. K advances a subgroup's
 * width at a time: lane i loads A(row, k0 + i) for every row, then for each kk the subgroup shuffles lane kk's
 * values to all lanes, which multiply them by their own B(kk) elements.
 */
function shuffleBody(t: GemmTile, emit: string): string {
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const rows = range(t.microM),
    cols = range(t.microN);
  const cells = rows.flatMap((i) => cols.map((j) => [i, j] as const));
  return /* wgsl */ `
    ${FOLDED_INDEX}
    @compute @workgroup_size(${SHUFFLE_WG})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
            @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) width: u32) {
      ${PLACE}
      let m0 = ((block / p.tilesN) % p.tilesM) * ${t.tileM}u;
      let n0 = (block % p.tilesN) * ${t.tileN}u + lid;
      ${rows.map((i) => `let r${i} = aRow(z, min(m0 + ${i}u, p.M - 1u));`).join(" ")}
      ${cols.map((j) => `let c${j} = bCol(z, min(n0 + ${SHUFFLE_WG * j}u, p.N - 1u));`).join(" ")}
      ${cells.map(([i, j]) => `var acc${i}_${j} = 0.0;`).join(" ")}
      for (var k0 = kBegin; k0 < kEnd; k0 += width) {
        ${rows.map((i) => `var s${i} = 0.0;`).join(" ")}
        if (k0 + lane < kEnd) { ${rows.map((i) => `s${i} = aLoad(r${i}, k0 + lane);`).join(" ")} }
        for (var kk = 0u; kk < min(width, kEnd - k0); kk++) {
          ${cols.map((j) => `let b${j} = bLoad(c${j}, k0 + kk);`).join(" ")}
          ${rows.map((i) => `let a${i} = subgroupShuffle(s${i}, kk);`).join(" ")}
          ${cells.map(([i, j]) => `acc${i}_${j} += a${i} * b${j};`).join(" ")}
        }
      }
      // One copy of the epilogue, in a loop (see directBody).
      var accs: array<f32, ${t.microM * t.microN}>;
      ${cells.map(([i, j]) => `accs[${i * t.microN + j}] = acc${i}_${j};`).join(" ")}
      for (var q = 0u; q < ${t.microM * t.microN}u; q++) {
        let m = m0 + q / ${t.microN}u;
        let n = n0 + ${SHUFFLE_WG}u * (q % ${t.microN}u);
        if (m < p.M && n < p.N) { let v = accs[q]; ${emit} }
      }
    }`;
}

/**
 * The barrier-free kernel: invocation (tx, ty) owns rows m0 + ty + 8i and columns n0 + tx + 8j. Rows and
 * columns past the edge are clamped for loading and skipped when storing.
 */
function directBody(t: GemmTile, emit: string): string {
  if (t.tileM !== SIDE * t.microM || t.tileN !== SIDE * t.microN)
    throw new Error(`gemm: a direct tile must be ${SIDE}·microM × ${SIDE}·microN, got ${JSON.stringify(t)}`);
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const rows = range(t.microM),
    cols = range(t.microN);
  const cells = rows.flatMap((i) => cols.map((j) => [i, j] as const));
  return /* wgsl */ `
    ${FOLDED_INDEX}
    @compute @workgroup_size(${SIDE * SIDE})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      ${PLACE}
      let m0 = ((block / p.tilesN) % p.tilesM) * ${t.tileM}u + lid / ${SIDE}u;
      let n0 = (block % p.tilesN) * ${t.tileN}u + lid % ${SIDE}u;
      ${rows.map((i) => `let r${i} = aRow(z, min(m0 + ${SIDE * i}u, p.M - 1u));`).join(" ")}
      ${cols.map((j) => `let c${j} = bCol(z, min(n0 + ${SIDE * j}u, p.N - 1u));`).join(" ")}
      ${cells.map(([i, j]) => `var acc${i}_${j} = 0.0;`).join(" ")}
      for (var k = kBegin; k < kEnd; k++) {
        ${rows.map((i) => `let a${i} = aLoad(r${i}, k);`).join(" ")}
        ${cols.map((j) => `let b${j} = bLoad(c${j}, k);`).join(" ")}
        ${cells.map(([i, j]) => `acc${i}_${j} += a${i} * b${j};`).join(" ")}
      }
      // One copy of the epilogue in a loop, not one per accumulator: lavapipe compiled 64 inlined copies in about
      // a minute per kernel (2 s this way).
      var accs: array<f32, ${t.microM * t.microN}>;
      ${cells.map(([i, j]) => `accs[${i * t.microN + j}] = acc${i}_${j};`).join(" ")}
      for (var q = 0u; q < ${t.microM * t.microN}u; q++) {
        let m = m0 + ${SIDE}u * (q / ${t.microN}u);
        let n = n0 + ${SIDE}u * (q % ${t.microN}u);
        if (m < p.M && n < p.N) { let v = accs[q]; ${emit} }
      }
    }`;
}

/** The tiled, double-buffered kernel (see the header). */
function tiledBody(s: GemmSpec, aAlongK: boolean, bAlongK: boolean, emit: string): string {
  const { tileM, tileN, tileK, microM, microN, unrollK, padK } = s.tile;
  if (microM % 4 || microN % 4 || tileM % microM || tileN % microN || tileK % unrollK)
    throw new Error(`gemm: bad tile shape ${JSON.stringify(s.tile)}`);
  const tx = tileN / microN,
    ty = tileM / microM,
    threads = tx * ty;
  const groupsM = microM / 4,
    groupsN = microN / 4;
  // Workgroup memory, in vec4s: two stages of A (K-major, [tileK][tileM], rows `strideA` apart) then two of B;
  // the epilogue reuses it for blocks of C.
  const strideA = tileM / 4 + (padK && aAlongK ? 1 : 0),
    strideB = tileN / 4 + (padK && bAlongK ? 1 : 0);
  const sizeA = 2 * tileK * strideA,
    sizeB = 2 * tileK * strideB;

  // A and B share one code path: an operand has an outer dimension (M for A, N for B) and the contraction K.
  const operand = (
    x: "a" | "b",
    dim: string,
    origin: string,
    tile: number,
    offset: number,
    stride: number,
    alongK: boolean,
    vec: boolean,
  ) => {
    const width = vec ? 4 : 1;
    const loads = (tile * tileK) / threads / width;
    if (!Number.isInteger(loads))
      throw new Error(`gemm: the ${x} tile does not split evenly over ${threads} threads in ${JSON.stringify(s.tile)}`);
    const type = vec ? "vec4<f32>" : "f32";
    const perRow = (alongK ? tileK : tile) / width; // loads along one contiguous run of the tile
    const state = x === "a" ? "aRow" : "bCol";
    const range = Array.from({ length: loads }, (_, j) => j);
    // Thread `lid`'s j-th load sits at (d, k) of the tile for the whole K loop: consecutive threads take
    // consecutive addresses, so loads coalesce, and the row (column) state is computed once.
    const place = range
      .map((j) => {
        const l = `(${j * threads}u + lid)`;
        const c = `(${l} % ${perRow}u) * ${width}u`,
          o = `${l} / ${perRow}u`;
        const [d, k] = alongK ? [o, c] : [c, o];
        return `let ${x}d${j} = ${d}; let ${x}k${j} = ${k}; let ${x}s${j} = ${state}(z, min(${origin} + ${x}d${j}, ${dim} - 1u));`;
      })
      .join("\n");
    const load = vec ? `${x}Load4` : `${x}Load`;
    const at = (j: number, k: string) => `S[${offset}u + (fill * ${tileK}u + ${k}) * ${stride}u + ${x}d${j} / 4u]`;
    const stash = (j: number) =>
      alongK && vec
        ? Array.from(
            { length: 4 },
            (_, i) => `${at(j, `${x}k${j} + ${i}u`)}[${x}d${j} % 4u] = r${x}[${j}].${"xyzw"[i]};`,
          ).join(" ")
        : vec
          ? `${at(j, `${x}k${j}`)} = r${x}[${j}];`
          : `${at(j, `${x}k${j}`)}[${x}d${j} % 4u] = r${x}[${j}];`;
    return {
      place,
      regs: `var r${x}: array<${type}, ${loads}>;`,
      fetch: range
        .map(
          (j) =>
            `r${x}[${j}] = ${type}(); if (${origin} + ${x}d${j} < ${dim} && k0 + ${x}k${j} < kEnd) { r${x}[${j}] = ${load}(${x}s${j}, k0 + ${x}k${j}); }`,
        )
        .join("\n"),
      stash: range.map(stash).join("\n"),
    };
  };
  const A = operand("a", "p.M", "row0", tileM, 0, strideA, aAlongK, s.vecA);
  const B = operand("b", "p.N", "col0", tileN, sizeA, strideB, bAlongK, s.vecB);

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
  const rows = Array.from({ length: unrollK }, (_, u) => `{\n${row(u)}\n}`).join("\n");

  // The epilogue goes through workgroup memory a block at a time: a row group of every thread's accumulators
  // (all column groups when the block fits in the stage memory, else one) is a [4·ty][width] block of C. This
  // makes the stores (and residual reads) coalesced and keeps a single copy of the epilogue code per block;
  // blocks are few because each costs lavapipe about a second of compilation.
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
        let m = row0 + ${g * 4 * ty}u + e / ${width}u;
        let n = col0 + ${gn0 * 4 * tx}u + e % ${width}u;
        if (m < p.M && n < p.N) { let v = S[e / 4u][e % 4u]; ${emit} }
      }`;
  }).join("\n");

  return /* wgsl */ `
    ${FOLDED_INDEX}
    var<workgroup> S: array<vec4<f32>, ${Math.max(sizeA + sizeB, (4 * ty * width) / 4)}>;
    @compute @workgroup_size(${threads})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      ${PLACE}
      let row0 = ((block / p.tilesN) % p.tilesM) * ${tileM}u;
      let col0 = (block % p.tilesN) * ${tileN}u;
      let tx = lid % ${tx}u;
      let ty = lid / ${tx}u;
      let steps = (kEnd - kBegin + ${tileK - 1}u) / ${tileK}u;
      ${A.place}
      ${B.place}
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
        for (var kk = 0u; kk < p.tileK; kk += ${unrollK}u) {
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
