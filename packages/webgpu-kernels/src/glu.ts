/**
 * GEGLU, the gated unit of Stable Diffusion's feed-forward blocks: x [rows, 2n] holds a value half and a gate
 * half per row, out [rows, n] = value · GELU(gate). One pass reads both halves where the unfused form split the
 * projection into two copies and then ran GELU and a product; the backward writes both halves of the gradient in
 * one pass too.
 */
import { BINARY, ERF_WGSL, UNARY } from "./elementwise.ts";
import { defineKernel } from "./kernel.ts";
import { FOLDED_INDEX, type KernelRunner } from "./runner.ts";

const WG = 256;

export interface GluShape {
  rows: number;
  /** Width of each half: x has 2n columns, out n. */
  n: number;
}

/** Thread i handles column i % n of row i / n: the value at xs[row·2n + col] (vi), the gate n further (gi). */
const HALVES = "let row = i / p.n; let col = i % p.n; let vi = row * 2u * p.n + col; let gi = vi + p.n;";

const gegluKernel = defineKernel({
  name: "geglu",
  inputs: { xs: "f32" },
  outputs: { out: "f32" },
  uniforms: { total: "u32", n: "u32" },
  body: () => /* wgsl */ `
    ${FOLDED_INDEX} ${ERF_WGSL}
    @compute @workgroup_size(${WG})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      let i = foldedIndex(wid, nwg) * ${WG}u + lid;
      if (i >= p.total) { return; }
      ${HALVES}
      let x = xs[gi];
      out[i] = xs[vi] * (${UNARY.gelu.wgsl});
    }`,
});

const gegluBackwardKernel = defineKernel({
  name: "gegluBackward",
  inputs: { xs: "f32", gradOut: "f32" },
  outputs: { gradX: "f32" },
  uniforms: { total: "u32", n: "u32" },
  body: () => /* wgsl */ `
    ${FOLDED_INDEX} ${ERF_WGSL}
    @compute @workgroup_size(${WG})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      let i = foldedIndex(wid, nwg) * ${WG}u + lid;
      if (i >= p.total) { return; }
      ${HALVES}
      let g = gradOut[i];
      let value = xs[vi];
      let a = xs[gi];
      let b = g * value;
      { let x = a; gradX[vi] = g * (${UNARY.gelu.wgsl}); }
      gradX[gi] = ${BINARY.geluGrad.wgsl};
    }`,
});

/** out [rows, n] = x[:, :n] · GELU(x[:, n:]). */
export function geglu(r: KernelRunner, x: GPUBuffer, out: GPUBuffer, s: GluShape) {
  const total = s.rows * s.n;
  gegluKernel.run(r, {}, { buffers: { xs: x, out }, uniforms: { total, n: s.n }, workgroups: Math.ceil(total / WG) });
}

/** gradX [rows, 2n]: the value half GELU(gate)·g, the gate half value·GELU′(gate)·g. */
export function gegluBackward(r: KernelRunner, x: GPUBuffer, gradOut: GPUBuffer, gradX: GPUBuffer, s: GluShape) {
  const total = s.rows * s.n;
  gegluBackwardKernel.run(
    r,
    {},
    { buffers: { xs: x, gradOut, gradX }, uniforms: { total, n: s.n }, workgroups: Math.ceil(total / WG) },
  );
}

export function gegluCpu(x: ArrayLike<number>, s: GluShape): Float64Array {
  const out = new Float64Array(s.rows * s.n);
  for (let row = 0; row < s.rows; row++)
    for (let c = 0; c < s.n; c++)
      out[row * s.n + c] = x[row * 2 * s.n + c]! * UNARY.gelu.cpu(x[(2 * row + 1) * s.n + c]!);
  return out;
}

export function gegluBackwardCpu(x: ArrayLike<number>, gradOut: ArrayLike<number>, s: GluShape): Float64Array {
  const gradX = new Float64Array(s.rows * 2 * s.n);
  for (let row = 0; row < s.rows; row++)
    for (let c = 0; c < s.n; c++) {
      const vi = row * 2 * s.n + c,
        gi = vi + s.n,
        g = gradOut[row * s.n + c]!;
      gradX[vi] = g * UNARY.gelu.cpu(x[gi]!);
      gradX[gi] = BINARY.geluGrad.cpu(x[gi]!, g * x[vi]!);
    }
  return gradX;
}
