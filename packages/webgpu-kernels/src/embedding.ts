/**
 * Embedding lookup (gather) and its gradient (scatter-add into the table), with CPU references.
 *
 * Scatter-add design: repeated ids would make a thread-per-position kernel race, and WGSL has no float
 * atomics. Token ids are known on the CPU anyway (the tokenizer made them), so the CPU groups them once:
 * `embeddingScatterPlan` sorts positions by id (stably) into one segment per distinct id. The kernel then
 * runs one thread per (distinct id, column), sums its segment in ascending position order and adds the sum
 * to the table row. Every table element has exactly one writer, and the summation order is fixed, so the
 * result is deterministic and bit-identical from run to run.
 */
import { defineKernel } from "./kernel.ts";
import { FOLDED_INDEX, type KernelRunner } from "./runner.ts";

const WG = 256;

const gatherKernel = defineKernel({
  name: "embeddingGather",
  inputs: { table: "f32", ids: "u32" },
  outputs: { out: "f32" },
  uniforms: { n: "u32", dim: "u32", vocab: "u32" },
  body: () => /* wgsl */ `
    ${FOLDED_INDEX}
    @compute @workgroup_size(${WG})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      let e = foldedIndex(wid, nwg) * ${WG}u + lid;
      if (e >= p.n) { return; }
      let id = min(ids[e / p.dim], p.vocab - 1u);
      out[e] = table[id * p.dim + e % p.dim];
    }`,
});

const scatterAddKernel = defineKernel({
  name: "embeddingScatterAdd",
  inputs: { gradOut: "f32", plan: "u32" },
  outputs: { gradTable: "f32" },
  uniforms: { n: "u32", dim: "u32", vocab: "u32", groups: "u32" },
  body: () => /* wgsl */ `
    ${FOLDED_INDEX}
    @compute @workgroup_size(${WG})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      let e = foldedIndex(wid, nwg) * ${WG}u + lid;
      if (e >= p.n) { return; }
      let g = e / p.dim;
      let d = e % p.dim;
      let row = plan[g];
      if (row >= p.vocab) { return; } // a corrupt plan must not write outside the table
      let order = 2u * p.groups + 1u;
      var sum = 0.0;
      for (var k = plan[p.groups + g]; k < plan[p.groups + g + 1u]; k++) {
        sum += gradOut[plan[order + k] * p.dim + d];
      }
      gradTable[row * p.dim + d] += sum;
    }`,
});

export interface EmbeddingShape {
  /** Number of ids (positions) looked up. */
  rows: number;
  /** Embedding width. */
  dim: number;
  /** Rows in the table. */
  vocab: number;
}

/**
 * out[i, :] = table[ids[i], :]. `ids` is a u32 buffer. An id ≥ vocab is clamped to vocab − 1 so a bad id can
 * never read outside the table; callers validate ids on the CPU (the tokenizer's output) and should not rely on it.
 */
export function embeddingGather(
  r: KernelRunner,
  table: GPUBuffer,
  ids: GPUBuffer,
  out: GPUBuffer,
  { rows, dim, vocab }: EmbeddingShape,
) {
  const n = rows * dim;
  gatherKernel.run(r, {}, { buffers: { table, ids, out }, uniforms: { n, dim, vocab }, workgroups: Math.ceil(n / WG) });
}

export function embeddingGatherCpu(
  table: Float32Array,
  ids: ArrayLike<number>,
  dim: number,
  vocab: number,
): Float32Array {
  const out = new Float32Array(ids.length * dim);
  for (let i = 0; i < ids.length; i++) {
    const id = Math.min(ids[i]!, vocab - 1);
    out.set(table.subarray(id * dim, (id + 1) * dim), i * dim);
  }
  return out;
}

/**
 * The CPU grouping the scatter-add kernel reads, packed into one u32 array to upload once:
 * `[unique ids (groups) | segment starts (groups + 1) | positions sorted by id (rows)]`.
 */
export interface ScatterPlan {
  groups: number;
  data: Uint32Array;
}

export function embeddingScatterPlan(ids: ArrayLike<number>, vocab: number): ScatterPlan {
  const rows = ids.length;
  for (let i = 0; i < rows; i++) {
    const id = ids[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= vocab)
      throw new Error(
        `embedding id ${id} at position ${i} is outside the table (vocab ${vocab}); check the tokenizer's vocabulary matches the model`,
      );
  }
  const order = Array.from({ length: rows }, (_, i) => i).sort((a, b) => ids[a]! - ids[b]! || a - b);
  const unique: number[] = [],
    starts: number[] = [];
  order.forEach((pos, k) => {
    if (k === 0 || ids[pos] !== ids[order[k - 1]!]) {
      unique.push(ids[pos]!);
      starts.push(k);
    }
  });
  starts.push(rows);
  return { groups: unique.length, data: Uint32Array.from([...unique, ...starts, ...order]) };
}

/**
 * gradTable[ids[i], :] += gradOut[i, :], summing repeated ids deterministically. `plan` is the uploaded
 * `embeddingScatterPlan(ids, vocab).data` and `groups` its group count. Accumulates, so it composes with other
 * gradient contributions to the same table (e.g. tied weights); zero `gradTable` first for a fresh gradient.
 */
export function embeddingScatterAdd(
  r: KernelRunner,
  gradOut: GPUBuffer,
  plan: GPUBuffer,
  gradTable: GPUBuffer,
  { rows, dim, vocab, groups }: EmbeddingShape & { groups: number },
) {
  const n = groups * dim;
  if (plan.size < (2 * groups + 1 + rows) * 4)
    throw new Error(
      `embeddingScatterAdd: the plan buffer holds ${plan.size} bytes, too few for ${groups} groups over ${rows} ids; upload embeddingScatterPlan(ids, vocab).data`,
    );
  scatterAddKernel.run(
    r,
    {},
    { buffers: { gradOut, plan, gradTable }, uniforms: { n, dim, vocab, groups }, workgroups: Math.ceil(n / WG) },
  );
}

/** Returns a copy of `gradTable` with the scatter-add applied, in the kernel's f32 summation order. */
export function embeddingScatterAddCpu(
  gradOut: Float32Array,
  ids: ArrayLike<number>,
  gradTable: Float32Array,
  dim: number,
): Float32Array {
  const out = gradTable.slice();
  const positions = new Map<number, number[]>();
  for (let i = 0; i < ids.length; i++) {
    const list = positions.get(ids[i]!);
    if (list) list.push(i);
    else positions.set(ids[i]!, [i]);
  }
  for (const [id, list] of positions) {
    for (let d = 0; d < dim; d++) {
      let sum = 0;
      for (const i of list) sum = Math.fround(sum + gradOut[i * dim + d]!);
      out[id * dim + d] = Math.fround(out[id * dim + d]! + sum);
    }
  }
  return out;
}
