/**
 * Sum reductions and the workgroup reduction the norm and softmax kernels share, with CPU references.
 * f32 accumulation throughout: strided per-thread partials, then a tree (or subgroups, then a short serial
 * combine), so rounding grows with log(n).
 */
import { defineKernel } from "./kernel.ts";
import { FOLDED_INDEX, type KernelRunner } from "./runner.ts";

const WG = 256;

/**
 * How partial values merge: a commutative, associative WGSL expression in `a` and `b`, and the builtin that
 * applies it across a subgroup where WGSL has one (others go through `subgroupShuffleXor`).
 */
export type Combine = { expr: string; subgroupOp?: "subgroupAdd" | "subgroupMax" };
export const ADD: Combine = { expr: "a + b", subgroupOp: "subgroupAdd" };

export interface ReduceOptions {
  /** Threads that reduce separately side by side: thread index = lane · columns + column. */
  columns?: number;
  /** Combine within each subgroup first (one column only): see `subgroupReduce`. */
  subgroups?: boolean;
}

/**
 * What a kernel calling `workgroupReduce` adds to its entry point's parameters and to each call's
 * arguments: the subgroup form reads the `subgroup_size` builtin, which only an entry point receives.
 */
export const reduceEntry = (subgroups: boolean) =>
  subgroups
    ? { params: ", @builtin(subgroup_size) subgroupSize: u32", args: ", subgroupSize" }
    : { params: "", args: "" };

/**
 * WGSL for `name(v, lane, column) -> type` (plus `subgroupSize` in the subgroup form, see `reduceEntry`):
 * combines `v` over the `lanes` threads that share a `column` and hands the total to each of them. Call it
 * from uniform control flow: it holds workgroup barriers.
 */
export function workgroupReduce(
  name: string,
  type: string,
  combine: Combine,
  lanes: number,
  { columns = 1, subgroups = false }: ReduceOptions = {},
): string {
  if (lanes & (lanes - 1)) throw new Error(`workgroupReduce: lanes must be a power of two, got ${lanes}`);
  if (subgroups && columns !== 1)
    throw new Error(`workgroupReduce: the subgroup form takes one column, got ${columns}`);
  if (subgroups) return subgroupReduce(name, type, combine, lanes);
  const at = (lane: string) => `${name}Partials[(${lane}) * ${columns}u + column]`;
  return /* wgsl */ `
    var<workgroup> ${name}Partials: array<${type}, ${lanes * columns}>;
    fn ${name}(v: ${type}, lane: u32, column: u32) -> ${type} {
      ${at("lane")} = v;
      workgroupBarrier();
      for (var s = ${lanes >> 1}u; s > 0u; s >>= 1u) {
        if (lane < s) { let a = ${at("lane")}; let b = ${at("lane + s")}; ${at("lane")} = ${combine.expr}; }
        workgroupBarrier();
      }
      let total = ${at("0u")};
      // A following call overwrites the partials; nobody may do so before every thread has read the total.
      workgroupBarrier();
      return total;
    }`;
}

/**
 * The subgroup form: each subgroup combines its values in registers and its first thread stores one partial;
 * after one barrier every subgroup combines the partials the same way (a strided serial pass, then across the
 * subgroup), so every thread gets the same total. Two barriers instead of log2(lanes) + 2: on lavapipe each
 * barrier is a pass over every invocation. The lane must be the thread's local_invocation_index: subgroups of
 * a one-dimensional workgroup are taken to be runs of consecutive invocations (WGSL has no subgroup id; Dawn's
 * own subgroup_id polyfill assumes the same). The subgroup size comes from the builtin, never assumed;
 * partials are sized for WebGPU's smallest, 4.
 */
function subgroupReduce(name: string, type: string, combine: Combine, lanes: number): string {
  // Across a subgroup where only the first `valid` lanes hold values: past a small workgroup's end lanes are
  // inactive, and past the last partial they hold a copy. A copy is harmless to max; the shuffled form skips
  // invalid partners, which leaves the complete total in lane 0.
  const across = (acc: string, valid: string) => {
    if (combine.subgroupOp === "subgroupMax") return `subgroupMax(${acc})`;
    if (combine.subgroupOp === "subgroupAdd") return `subgroupAdd(select(${type}(), ${acc}, sgLane < ${valid}))`;
    return `shuffled${name}(${acc}, sgLane, ${valid}, subgroupSize)`;
  };
  const shuffled = combine.subgroupOp
    ? ""
    : /* wgsl */ `
    fn shuffled${name}(v: ${type}, sgLane: u32, valid: u32, subgroupSize: u32) -> ${type} {
      var acc = v;
      for (var m = 1u; m < subgroupSize; m <<= 1u) {
        let b = subgroupShuffleXor(acc, m);
        if ((sgLane ^ m) < valid) { let a = acc; acc = ${combine.expr}; }
      }
      return subgroupBroadcast(acc, 0u);
    }`;
  return /* wgsl */ `
    var<workgroup> ${name}Partials: array<${type}, ${Math.max(1, lanes / 4)}>;
    ${shuffled}
    fn ${name}(v: ${type}, lane: u32, column: u32, subgroupSize: u32) -> ${type} {
      let sgLane = lane % subgroupSize;
      let partial = ${across("v", `${lanes}u`)};
      if (sgLane == 0u) { ${name}Partials[lane / subgroupSize] = partial; }
      workgroupBarrier();
      let n = (${lanes}u + subgroupSize - 1u) / subgroupSize;
      var acc = ${name}Partials[min(sgLane, n - 1u)];
      for (var s = sgLane + subgroupSize; s < n; s += subgroupSize) { let a = acc; let b = ${name}Partials[s]; acc = ${combine.expr}; }
      let total = ${across("acc", "n")};
      // A following call overwrites the partials; nobody may do so before every thread has read them.
      workgroupBarrier();
      return total;
    }`;
}

export interface SumShape {
  outer: number;
  reduce: number;
  inner: number;
}

/**
 * Few outputs over a long axis would leave most of the GPU idle, so such sums run in two passes: chunks of
 * the axis into the runner's "sum" scratch buffer, then a sum over the chunks. The scratch has a fixed size,
 * so the chunk count is capped by it.
 */
const SCRATCH_FLOATS = 16384;
const scratch = (r: KernelRunner) => r.scratch("sum", SCRATCH_FLOATS * 4);

/**
 * How many chunks to split a reduction of length `reduce` into, given the workgroups one pass would use.
 * Chunks hold at least `minChunk` values (callers pass 16 per thread), which also keeps the second pass short.
 */
function chunkCount(outputs: number, workgroups: number, reduce: number, minChunk: number, target: number): number {
  if (workgroups >= target || reduce < 2 * minChunk) return 1;
  const chunks = Math.min(
    Math.ceil(reduce / minChunk),
    Math.ceil(target / workgroups),
    Math.floor(SCRATCH_FLOATS / outputs),
  );
  return chunks < 2 ? 1 : Math.ceil(reduce / Math.ceil(reduce / chunks));
}

/** Reductions up to this long run one thread per output: a workgroup tree costs more than the loop. */
const SERIAL_REDUCE = 64;

/** out[o, i] = Σ_j x[o, j, i] for x viewed as [outer, reduce, inner]. */
export function sum(r: KernelRunner, x: GPUBuffer, out: GPUBuffer, s: SumShape) {
  if (s.reduce <= SERIAL_REDUCE) return launchSerialSum(r, x, out, s);
  const { lanes, blocks } = geometry(s.inner);
  const chunks = chunkCount(s.outer * s.inner, s.outer * blocks, s.reduce, 16 * lanes, 4 * r.wave);
  if (chunks === 1) return launchSum(r, x, out, s, 1);
  const partials = scratch(r);
  launchSum(r, x, partials, s, chunks);
  launchSum(r, partials, out, { outer: s.outer, reduce: chunks, inner: s.inner }, 1);
}

export function sumAll(r: KernelRunner, x: GPUBuffer, out: GPUBuffer, n: number) {
  sum(r, x, out, { outer: 1, reduce: n, inner: 1 });
}

/**
 * Up to 32 threads side by side along `inner` (`columns`), so that neighbours read neighbouring addresses;
 * the workgroup's `lanes` rows of threads walk `reduce`; `blocks` workgroups cover `inner`.
 */
function geometry(inner: number) {
  const columns = Math.min(32, 2 ** Math.ceil(Math.log2(Math.max(1, inner))));
  return { columns, lanes: WG / columns, blocks: Math.ceil(inner / columns) };
}

/** Everything the chunked sum bakes in: threads side by side along `inner`, and the reduction's form. */
type SumSpec = { columns: number; subgroups: boolean };

/** Workgroup (o, column block, chunk) sums its chunk of the reduced axis into out viewed as [outer, chunks, inner]. */
const sumKernel = defineKernel({
  name: "sum",
  inputs: { x: "f32" },
  outputs: { out: "f32" },
  uniforms: { outer: "u32", reduce: "u32", inner: "u32", chunks: "u32", chunkLength: "u32", blocks: "u32" },
  enables: (s: SumSpec) => (s.subgroups ? ["subgroups"] : []),
  body: ({ columns, subgroups }) => {
    const lanes = WG / columns,
      sg = reduceEntry(subgroups);
    return /* wgsl */ `
      ${FOLDED_INDEX}
      ${workgroupReduce("workgroupSum", "f32", ADD, lanes, { columns, subgroups })}
      @compute @workgroup_size(${WG})
      fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32${sg.params}) {
        let w = foldedIndex(wid, nwg);
        let chunk = w % p.chunks;
        let o = w / p.chunks / p.blocks;
        if (o >= p.outer) { return; }
        let column = lid % ${columns}u;
        let lane = lid / ${columns}u;
        let i = (w / p.chunks % p.blocks) * ${columns}u + column;
        var acc = 0.0;
        if (i < p.inner) {
          let end = min((chunk + 1u) * p.chunkLength, p.reduce);
          for (var j = chunk * p.chunkLength + lane; j < end; j += ${lanes}u) { acc += x[(o * p.reduce + j) * p.inner + i]; }
        }
        let total = workgroupSum(acc, lane, column${sg.args});
        if (lane == 0u && i < p.inner) { out[(o * p.chunks + chunk) * p.inner + i] = total; }
      }`;
  },
});

function launchSum(r: KernelRunner, x: GPUBuffer, out: GPUBuffer, s: SumShape, chunks: number) {
  const { columns, blocks } = geometry(s.inner);
  // Subgroups combine lanes of one column; with several columns a subgroup holds neighbouring columns instead.
  const spec = { columns, subgroups: r.subgroups && columns === 1 };
  const uniforms = { ...s, chunks, chunkLength: Math.ceil(s.reduce / chunks), blocks };
  sumKernel.run(r, spec, { buffers: { x, out }, uniforms, workgroups: s.outer * blocks * chunks });
}

/** One thread per output walks its short reduced axis; threads of a workgroup take neighbouring outputs. */
const serialSumKernel = defineKernel({
  name: "sumSerial",
  inputs: { x: "f32" },
  outputs: { out: "f32" },
  uniforms: { outputs: "u32", reduce: "u32", inner: "u32" },
  body: () => /* wgsl */ `
    ${FOLDED_INDEX}
    @compute @workgroup_size(64)
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      let e = foldedIndex(wid, nwg) * 64u + lid;
      if (e >= p.outputs) { return; }
      let base = (e / p.inner) * p.reduce * p.inner + e % p.inner;
      var acc = 0.0;
      for (var j = 0u; j < p.reduce; j++) { acc += x[base + j * p.inner]; }
      out[e] = acc;
    }`,
});

function launchSerialSum(r: KernelRunner, x: GPUBuffer, out: GPUBuffer, s: SumShape) {
  const outputs = s.outer * s.inner;
  serialSumKernel.run(
    r,
    {},
    {
      buffers: { x, out },
      uniforms: { outputs, reduce: s.reduce, inner: s.inner },
      workgroups: Math.ceil(outputs / 64),
    },
  );
}

/**
 * Sums a contiguous tensor of `shape` over `axes` (any set, in any order; negative counts from the end).
 * `out` holds the remaining dimensions in order. Reductions that are one contiguous run of axes use `sum`;
 * other patterns (the bias gradient of NCHW: axes 0 and 2 of [B, C, HW]) walk the reduced index space with
 * strides, one workgroup per output.
 */
export function sumAxes(
  r: KernelRunner,
  x: GPUBuffer,
  out: GPUBuffer,
  shape: readonly number[],
  axes: readonly number[],
) {
  const runs = mergeRuns(shape, axes);
  const kept = runs.filter((d) => !d.reduced),
    reduced = runs.filter((d) => d.reduced);
  const product = (list: Run[]) => list.reduce((a, d) => a * d.size, 1);
  const outputs = product(kept),
    count = product(reduced);
  if (reduced.length <= 1) {
    const outer = product(
      runs.slice(
        0,
        Math.max(
          0,
          runs.findIndex((d) => d.reduced),
        ),
      ),
    );
    return sum(r, x, out, { outer, reduce: count, inner: outputs / outer });
  }
  const chunks = chunkCount(outputs, outputs, count, 16 * WG, 4 * r.wave);
  if (chunks === 1) return launchStrided(r, x, out, kept, reduced, 1);
  const partials = scratch(r);
  launchStrided(r, x, partials, kept, reduced, chunks);
  launchSum(r, partials, out, { outer: outputs, reduce: chunks, inner: 1 }, 1);
}

interface Run {
  size: number;
  stride: number;
  reduced: boolean;
}

/** Drops size-1 dimensions and fuses neighbours that are both kept or both reduced: they index as one. */
function mergeRuns(shape: readonly number[], axes: readonly number[]): Run[] {
  const rank = shape.length;
  const reduced = new Set(
    axes.map((a) => {
      const k = a < 0 ? a + rank : a;
      if (!Number.isInteger(k) || k < 0 || k >= rank)
        throw new Error(`sumAxes: axis ${a} is out of range for shape [${shape}]`);
      return k;
    }),
  );
  const runs: Run[] = [];
  let stride = 1;
  for (let d = rank - 1; d >= 0; d--) {
    const size = shape[d]!,
      isReduced = reduced.has(d),
      first = runs[0];
    if (size !== 1) {
      if (first && first.reduced === isReduced) first.size *= size;
      else runs.unshift({ size, stride, reduced: isReduced });
    }
    stride *= size;
  }
  return runs;
}

type StridedSpec = { kept: number; reduced: number; subgroups: boolean };

/** Uniforms of the strided sum: a size and a stride per kept and per reduced run. */
const runFields = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => [`${prefix}Size${i}`, `${prefix}Stride${i}`]).flat();

/**
 * One workgroup per (output, chunk): the kept runs give the base offset, the reduced runs are walked flat.
 * Its uniforms depend on the run counts, so there is one definition per pair of counts (the counts are also
 * in the spec, hence in the pipeline key).
 */
const stridedKernels = new Map<string, ReturnType<typeof stridedKernel>>();
function stridedKernel(kept: number, reduced: number) {
  const uniforms = Object.fromEntries(
    ["outputs", "count", "chunks", "chunkLength", ...runFields("kept", kept), ...runFields("reduced", reduced)].map(
      (n) => [n, "u32" as const],
    ),
  );
  // Innermost run first, so that neighbouring threads step along the fastest-moving reduced dimension.
  const unravel = (prefix: string, n: number, index: string, into: string) =>
    Array.from({ length: n }, (_, k) => n - 1 - k)
      .map(
        (i) => `${into} += (${index} % p.${prefix}Size${i}) * p.${prefix}Stride${i}; ${index} /= p.${prefix}Size${i};`,
      )
      .join("\n        ");
  return defineKernel({
    name: "sumStrided",
    inputs: { x: "f32" },
    outputs: { out: "f32" },
    uniforms,
    enables: (s: StridedSpec) => (s.subgroups ? ["subgroups"] : []),
    body: ({ subgroups }) => {
      const sg = reduceEntry(subgroups);
      return /* wgsl */ `
      ${FOLDED_INDEX}
      ${workgroupReduce("workgroupSum", "f32", ADD, WG, { subgroups })}
      @compute @workgroup_size(${WG})
      fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32${sg.params}) {
        let w = foldedIndex(wid, nwg);
        let o = w / p.chunks;
        let chunk = w % p.chunks;
        if (o >= p.outputs) { return; }
        var rest = o;
        var base = 0u;
        ${unravel("kept", kept, "rest", "base")}
        var acc = 0.0;
        let end = min((chunk + 1u) * p.chunkLength, p.count);
        for (var j = chunk * p.chunkLength + lid; j < end; j += ${WG}u) {
          var q = j;
          var offset = base;
          ${unravel("reduced", reduced, "q", "offset")}
          acc += x[offset];
        }
        let total = workgroupSum(acc, lid, 0u${sg.args});
        if (lid == 0u) { out[o * p.chunks + chunk] = total; }
      }`;
    },
  });
}

function launchStrided(r: KernelRunner, x: GPUBuffer, out: GPUBuffer, kept: Run[], reduced: Run[], chunks: number) {
  const outputs = kept.reduce((a, d) => a * d.size, 1),
    count = reduced.reduce((a, d) => a * d.size, 1);
  const tag = `${kept.length}:${reduced.length}`;
  let kernel = stridedKernels.get(tag);
  if (!kernel) stridedKernels.set(tag, (kernel = stridedKernel(kept.length, reduced.length)));
  const runs = (prefix: string, list: Run[]) =>
    list.flatMap((d, i) => [
      [`${prefix}Size${i}`, d.size],
      [`${prefix}Stride${i}`, d.stride],
    ]);
  const uniforms = Object.fromEntries([
    ["outputs", outputs],
    ["count", count],
    ["chunks", chunks],
    ["chunkLength", Math.ceil(count / chunks)],
    ...runs("kept", kept),
    ...runs("reduced", reduced),
  ]);
  const spec = { kept: kept.length, reduced: reduced.length, subgroups: r.subgroups };
  kernel.run(r, spec, { buffers: { x, out }, uniforms, workgroups: outputs * chunks });
}

export function sumCpu(x: ArrayLike<number>, s: SumShape): Float64Array {
  const out = new Float64Array(s.outer * s.inner);
  for (let o = 0; o < s.outer; o++) {
    for (let j = 0; j < s.reduce; j++) {
      for (let i = 0; i < s.inner; i++) out[o * s.inner + i] += x[(o * s.reduce + j) * s.inner + i]!;
    }
  }
  return out;
}

/** Reference for `sumAxes`, written independently of its run merging: a plain walk over every element. */
export function sumAxesCpu(x: ArrayLike<number>, shape: readonly number[], axes: readonly number[]): Float64Array {
  const rank = shape.length;
  const reduced = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
  const keptShape = shape.filter((_, d) => !reduced.has(d));
  const out = new Float64Array(keptShape.reduce((a, b) => a * b, 1));
  const n = shape.reduce((a, b) => a * b, 1);
  for (let e = 0; e < n; e++) {
    let rest = e,
      o = 0,
      scale = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const c = rest % shape[d]!;
      rest = Math.floor(rest / shape[d]!);
      if (!reduced.has(d)) {
        o += c * scale;
        scale *= shape[d]!;
      }
    }
    out[o] += x[e]!;
  }
  return out;
}
