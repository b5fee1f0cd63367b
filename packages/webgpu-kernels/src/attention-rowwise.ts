/**
 * Row-per-thread attention for CPU drivers. The tiled FlashAttention kernels in attention.ts keep their
 * per-thread scores in straight-line, constant-indexed code so a GPU holds them in registers; LLVM (lavapipe)
 * takes tens of seconds to a few minutes to compile those, longer than the tiny models take to run. These
 * kernels loop instead: one invocation owns one query row (forward, dQ) or one key row (dK, dV), streams the
 * other side with an online softmax, and never forms the Lq×Lk matrix either. Same bindings, layouts and results.
 */
import { LAYOUT_UNIFORMS, ROW_STARTS, type LayoutUniforms } from "./attention-layout.ts";
import { defineKernel } from "./kernel.ts";
import { FOLDED_INDEX, type KernelRunner } from "./runner.ts";

const WG = 64;

/** Head dims and the mask: everything the row-wise kernels bake in. */
type RowwiseSpec = { d: number; dv: number; causal: boolean };
/** `rows` counts query rows (forward, dQ) or key rows (dK, dV). */
const UNIFORMS = { rows: "u32", lq: "u32", lk: "u32", scale: "f32", ...LAYOUT_UNIFORMS } as const;

const MAIN = /* wgsl */ `
  ${FOLDED_INDEX}${ROW_STARTS}
  @compute @workgroup_size(${WG})
  fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = foldedIndex(wid, nwg) * ${WG}u + lid;
    if (row >= p.rows) { return; }`;

/** Σ_e x[xStart + e]·y[yStart + e] over n floats, as a WGSL function over two bound arrays. */
const dotFn = (name: string, x: string, y: string, n: number) => `
  fn ${name}(xStart: u32, yStart: u32) -> f32 {
    var s = 0.0;
    for (var e = 0u; e < ${n}u; e++) { s += ${x}[xStart + e] * ${y}[yStart + e]; }
    return s;
  }`;

/** Keys j visible to query i: all of them, or j ≤ i with a causal mask. */
const keyEnd = (causal: boolean, i: string) => (causal ? `min(p.lk, ${i} + 1u)` : "p.lk");

export const rowwiseForwardKernel = defineKernel({
  name: "attentionRowwiseForward",
  inputs: { q: "f32", k: "f32", v: "f32" },
  outputs: { out: "f32", lse: "f32" },
  uniforms: UNIFORMS,
  body: ({ d, dv, causal }: RowwiseSpec) => /* wgsl */ `
  ${dotFn("qk", "q", "k", d)}
  ${MAIN}
    let bh = row / p.lq; let i = row % p.lq;
    let query = qRow(bh, i); let k0 = kRow(bh, 0u); let v0 = vRow(bh, 0u);
    var acc = array<f32, ${dv}>(); // explicit: lavapipe may not zero an uninitialised var
    var m = -1e30; var l = 0.0;
    for (var j = 0u; j < ${keyEnd(causal, "i")}; j++) {
      let s = p.scale * qk(query, k0 + j * p.kToken);
      let mNew = max(m, s);
      let correction = exp(m - mNew);
      let w = exp(s - mNew);
      l = l * correction + w;
      let value = v0 + j * p.vToken;
      for (var e = 0u; e < ${dv}u; e++) { acc[e] = acc[e] * correction + w * v[value + e]; }
      m = mNew;
    }
    let o = oRow(bh, i);
    for (var e = 0u; e < ${dv}u; e++) { out[o + e] = acc[e] / l; }
    lse[row] = m + log(l);
  }`,
});

/** The backward kernels' inputs and the two dot products they recompute. */
const BACKWARD_INPUTS = { q: "f32", k: "f32", v: "f32", gradOut: "f32", lse: "f32", delta: "f32" } as const;
const backwardDots = (d: number, dv: number) => `${dotFn("qk", "q", "k", d)}${dotFn("dov", "gradOut", "v", dv)}`;

export const rowwiseGradQKernel = defineKernel({
  name: "attentionRowwiseGradQ",
  inputs: BACKWARD_INPUTS,
  outputs: { gradQ: "f32" },
  uniforms: UNIFORMS,
  body: ({ d, dv, causal }: RowwiseSpec) => /* wgsl */ `
  ${backwardDots(d, dv)}
  ${MAIN}
    let bh = row / p.lq; let i = row % p.lq;
    let query = qRow(bh, i); let o = oRow(bh, i); let k0 = kRow(bh, 0u); let v0 = vRow(bh, 0u);
    var acc = array<f32, ${d}>(); // explicit: lavapipe may not zero an uninitialised var
    for (var j = 0u; j < ${keyEnd(causal, "i")}; j++) {
      let key = k0 + j * p.kToken;
      let prob = exp(p.scale * qk(query, key) - lse[row]);
      let ds = prob * (dov(o, v0 + j * p.vToken) - delta[row]);
      for (var e = 0u; e < ${d}u; e++) { acc[e] += ds * k[key + e]; }
    }
    for (var e = 0u; e < ${d}u; e++) { gradQ[query + e] = p.scale * acc[e]; }
  }`,
});

export const rowwiseGradKVKernel = defineKernel({
  name: "attentionRowwiseGradKV",
  inputs: BACKWARD_INPUTS,
  outputs: { gradK: "f32", gradV: "f32" },
  uniforms: UNIFORMS,
  body: ({ d, dv, causal }: RowwiseSpec) => /* wgsl */ `
  ${backwardDots(d, dv)}
  ${MAIN}
    // Here row is a key row: bh·Lk + j.
    let bh = row / p.lk; let j = row % p.lk;
    let key = kRow(bh, j); let value = vRow(bh, j); let q0 = qRow(bh, 0u); let o0 = oRow(bh, 0u);
    var dk = array<f32, ${d}>(); // explicit: lavapipe may not zero an uninitialised var
    var dvAcc = array<f32, ${dv}>(); // explicit: lavapipe may not zero an uninitialised var
    for (var i = ${causal ? "j" : "0u"}; i < p.lq; i++) {
      let stat = bh * p.lq + i;
      let query = q0 + i * p.qToken; let o = o0 + i * p.oToken;
      let prob = exp(p.scale * qk(query, key) - lse[stat]);
      let ds = prob * (dov(o, value) - delta[stat]);
      for (var e = 0u; e < ${dv}u; e++) { dvAcc[e] += prob * gradOut[o + e]; }
      for (var e = 0u; e < ${d}u; e++) { dk[e] += ds * q[query + e]; }
    }
    for (var e = 0u; e < ${d}u; e++) { gradK[key + e] = p.scale * dk[e]; }
    for (var e = 0u; e < ${dv}u; e++) { gradV[value + e] = dvAcc[e]; }
  }`,
});

export interface RowwiseShape {
  bh: number;
  lq: number;
  lk: number;
  d: number;
  dv: number;
  scale: number;
  causal: boolean;
  /** The layout's uniform values (attention-layout.ts). */
  layout: LayoutUniforms;
}

export function rowwiseAttention(
  r: KernelRunner,
  q: GPUBuffer,
  k: GPUBuffer,
  v: GPUBuffer,
  out: GPUBuffer,
  lse: GPUBuffer,
  s: RowwiseShape,
) {
  const rows = s.bh * s.lq;
  rowwiseForwardKernel.run(r, specOf(s), {
    buffers: { q, k, v, out, lse },
    uniforms: { rows, lq: s.lq, lk: s.lk, scale: s.scale, ...s.layout },
    workgroups: Math.ceil(rows / WG),
  });
}

/** dQ then dK, dV; `delta` (Σ dO·O per query row) must already be computed. */
export function rowwiseAttentionBackward(
  r: KernelRunner,
  [q, k, v, gradOut, lse, delta]: [
    q: GPUBuffer,
    k: GPUBuffer,
    v: GPUBuffer,
    gradOut: GPUBuffer,
    lse: GPUBuffer,
    delta: GPUBuffer,
  ],
  gradQ: GPUBuffer,
  gradK: GPUBuffer,
  gradV: GPUBuffer,
  s: RowwiseShape,
) {
  const inputs = { q, k, v, gradOut, lse, delta },
    spec = specOf(s);
  const queries = s.bh * s.lq,
    keys = s.bh * s.lk;
  rowwiseGradQKernel.run(r, spec, {
    buffers: { ...inputs, gradQ },
    uniforms: { rows: queries, lq: s.lq, lk: s.lk, scale: s.scale, ...s.layout },
    workgroups: Math.ceil(queries / WG),
  });
  rowwiseGradKVKernel.run(r, spec, {
    buffers: { ...inputs, gradK, gradV },
    uniforms: { rows: keys, lq: s.lq, lk: s.lk, scale: s.scale, ...s.layout },
    workgroups: Math.ceil(keys / WG),
  });
}

const specOf = (s: RowwiseShape): RowwiseSpec => ({ d: s.d, dv: s.dv, causal: s.causal });
