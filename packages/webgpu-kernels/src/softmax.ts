/**
 * Softmax over the last dimension and its backward, one workgroup per row, with CPU references.
 * Max-subtracted: each thread keeps a running (max, Σ exp(x − max)) pair that workgroups merge, so no
 * exponent ever exceeds 0 and logits around 100 cannot overflow f32.
 */
import { ADD, reduceEntry, workgroupReduce } from "./reduce.ts";
import { defineKernel } from "./kernel.ts";
import { FOLDED_INDEX, type KernelRunner } from "./runner.ts";

const WG = 256;

export interface SoftmaxShape {
  rows: number;
  cols: number;
}

/** Lowest finite f32: the neutral max, and exp(it − m) underflows to 0 for any real m. */
const LOWEST = "-3.4028234663852886e38";

/** Both kernels differ only in how their workgroup reduction runs. */
type SoftmaxSpec = { subgroups: boolean };
const enables = (s: SoftmaxSpec) => (s.subgroups ? ["subgroups"] : []);

const softmaxKernel = defineKernel({
  name: "softmax",
  inputs: { x: "f32" },
  outputs: { out: "f32" },
  uniforms: { rows: "u32", cols: "u32" },
  enables,
  body: ({ subgroups }) => /* wgsl */ `
    ${FOLDED_INDEX}
    // Merges two (max, Σ exp(v − max)) pairs by rescaling both sums to the larger max.
    fn merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
      let m = max(a.x, b.x);
      return vec2(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
    }
    ${workgroupReduce("workgroupMerge", "vec2<f32>", { expr: "merge(a, b)" }, WG, { subgroups })}
    @compute @workgroup_size(${WG})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32${reduceEntry(subgroups).params}) {
      let row = foldedIndex(wid, nwg);
      if (row >= p.rows) { return; }
      let base = row * p.cols;
      var acc = vec2(${LOWEST}, 0.0);
      for (var i = lid; i < p.cols; i += ${WG}u) { acc = merge(acc, vec2(x[base + i], 1.0)); }
      let total = workgroupMerge(acc, lid, 0u${reduceEntry(subgroups).args});
      let scale = 1.0 / total.y;
      for (var i = lid; i < p.cols; i += ${WG}u) { out[base + i] = exp(x[base + i] - total.x) * scale; }
    }`,
});

const softmaxBackwardKernel = defineKernel({
  name: "softmaxBackward",
  inputs: { y: "f32", gradY: "f32" },
  outputs: { gradX: "f32" },
  uniforms: { rows: "u32", cols: "u32" },
  enables,
  body: ({ subgroups }) => /* wgsl */ `
    ${FOLDED_INDEX}
    ${workgroupReduce("workgroupSum", "f32", ADD, WG, { subgroups })}
    @compute @workgroup_size(${WG})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32${reduceEntry(subgroups).params}) {
      let row = foldedIndex(wid, nwg);
      if (row >= p.rows) { return; }
      let base = row * p.cols;
      var acc = 0.0;
      for (var i = lid; i < p.cols; i += ${WG}u) { acc += gradY[base + i] * y[base + i]; }
      let total = workgroupSum(acc, lid, 0u${reduceEntry(subgroups).args});
      for (var i = lid; i < p.cols; i += ${WG}u) { gradX[base + i] = y[base + i] * (gradY[base + i] - total); }
    }`,
});

/** out[r, :] = exp(x[r, :] − max) / Σ exp(x[r, :] − max). */
export function softmax(r: KernelRunner, x: GPUBuffer, out: GPUBuffer, s: SoftmaxShape) {
  softmaxKernel.run(r, { subgroups: r.subgroups }, { buffers: { x, out }, uniforms: s, workgroups: s.rows });
}

/** gradX = y · (gradY − Σ gradY·y), per row. */
export function softmaxBackward(r: KernelRunner, y: GPUBuffer, gradY: GPUBuffer, gradX: GPUBuffer, s: SoftmaxShape) {
  softmaxBackwardKernel.run(
    r,
    { subgroups: r.subgroups },
    { buffers: { y, gradY, gradX }, uniforms: s, workgroups: s.rows },
  );
}

export function softmaxCpu(x: ArrayLike<number>, s: SoftmaxShape): Float64Array {
  const out = new Float64Array(s.rows * s.cols);
  for (let r = 0; r < s.rows; r++) {
    const base = r * s.cols;
    let max = -Infinity,
      total = 0;
    for (let i = 0; i < s.cols; i++) max = Math.max(max, x[base + i]!);
    for (let i = 0; i < s.cols; i++) total += out[base + i] = Math.exp(x[base + i]! - max);
    for (let i = 0; i < s.cols; i++) out[base + i] /= total;
  }
  return out;
}

export function softmaxBackwardCpu(y: ArrayLike<number>, gradY: ArrayLike<number>, s: SoftmaxShape): Float64Array {
  const gradX = new Float64Array(s.rows * s.cols);
  for (let r = 0; r < s.rows; r++) {
    const base = r * s.cols;
    let dot = 0;
    for (let i = 0; i < s.cols; i++) dot += gradY[base + i]! * y[base + i]!;
    for (let i = 0; i < s.cols; i++) gradX[base + i] = y[base + i]! * (gradY[base + i]! - dot);
  }
  return gradX;
}
