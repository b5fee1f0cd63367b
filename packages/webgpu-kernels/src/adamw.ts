/**
 * The AdamW update, matching torch.optim.AdamW (amsgrad=False, maximize=False) step for step, and a
 * non-finite check that lets the trainer skip a bad step with one 4-byte readback.
 */
import { defineKernel } from "./kernel.ts";
import { FOLDED_INDEX, type KernelRunner } from "./runner.ts";

const WG = 256;

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1 on the first update, as PyTorch's `state["step"]` after its increment. */
  step: number;
  n: number;
  /** Multiplies the gradient before anything else: undoes loss scaling or averages accumulated gradients. */
  gradScale?: number;
}

/** The scalars the kernel needs, computed in f64 once per step as PyTorch does on the host. */
function scalars({ lr, beta1, beta2, weightDecay, step }: AdamWOptions) {
  if (!Number.isInteger(step) || step < 1) throw new Error(`adamw: step counts updates from 1, got ${step}`);
  return {
    decay: 1 - lr * weightDecay,
    stepSize: lr / (1 - beta1 ** step),
    bias2Sqrt: Math.sqrt(1 - beta2 ** step),
  };
}

const adamwKernel = defineKernel({
  name: "adamw",
  inputs: { grad: "f32" },
  outputs: { param: "f32", m: "f32", v: "f32" },
  uniforms: {
    n: "u32",
    decay: "f32",
    oneMinusBeta1: "f32",
    beta2: "f32",
    oneMinusBeta2: "f32",
    stepSize: "f32",
    bias2Sqrt: "f32",
    eps: "f32",
    gradScale: "f32",
  },
  body: () => /* wgsl */ `
    ${FOLDED_INDEX}
    @compute @workgroup_size(${WG})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      let i = foldedIndex(wid, nwg) * ${WG}u + lid;
      if (i >= p.n) { return; }
      let g = grad[i] * p.gradScale;
      // PyTorch updates exp_avg with lerp (m + (1-β1)(g-m)) and exp_avg_sq with mul then addcmul.
      let mi = m[i] + p.oneMinusBeta1 * (g - m[i]);
      let vi = v[i] * p.beta2 + p.oneMinusBeta2 * g * g;
      m[i] = mi;
      v[i] = vi;
      let denom = sqrt(vi) / p.bias2Sqrt + p.eps;
      param[i] = param[i] * p.decay - p.stepSize * (mi / denom);
    }`,
});

/** Updates `param`, `m` (exp_avg) and `v` (exp_avg_sq) in place from `grad`. */
export function adamw(r: KernelRunner, param: GPUBuffer, grad: GPUBuffer, m: GPUBuffer, v: GPUBuffer, o: AdamWOptions) {
  const s = scalars(o);
  adamwKernel.run(
    r,
    {},
    {
      buffers: { param, grad, m, v },
      uniforms: {
        n: o.n,
        decay: s.decay,
        oneMinusBeta1: 1 - o.beta1,
        beta2: o.beta2,
        oneMinusBeta2: 1 - o.beta2,
        stepSize: s.stepSize,
        bias2Sqrt: s.bias2Sqrt,
        eps: o.eps,
        gradScale: o.gradScale ?? 1,
      },
      workgroups: Math.ceil(o.n / WG),
    },
  );
}

/** The same update in f64 on copies of the inputs. */
export function adamwCpu(
  param: ArrayLike<number>,
  grad: ArrayLike<number>,
  m: ArrayLike<number>,
  v: ArrayLike<number>,
  o: AdamWOptions,
) {
  const s = scalars(o);
  const out = { param: Float64Array.from(param), m: Float64Array.from(m), v: Float64Array.from(v) };
  const scale = o.gradScale ?? 1;
  for (let i = 0; i < o.n; i++) {
    const g = grad[i]! * scale;
    out.m[i] = out.m[i]! + (1 - o.beta1) * (g - out.m[i]!);
    out.v[i] = out.v[i]! * o.beta2 + (1 - o.beta2) * g * g;
    out.param[i] = out.param[i]! * s.decay - s.stepSize * (out.m[i]! / (Math.sqrt(out.v[i]!) / s.bias2Sqrt + o.eps));
  }
  return out;
}

const PER_GROUP = WG * 4;

const hasNonFiniteKernel = defineKernel({
  name: "hasNonFinite",
  inputs: { bits: "u32" },
  outputs: { flag: "atomic<u32>" },
  uniforms: { n: "u32" },
  body: () => /* wgsl */ `
    var<workgroup> seen: atomic<u32>;
    ${FOLDED_INDEX}
    @compute @workgroup_size(${WG})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      let base = foldedIndex(wid, nwg) * ${PER_GROUP}u + lid;
      var bad = 0u;
      for (var k = 0u; k < 4u; k++) {
        let i = base + k * ${WG}u;
        if (i < p.n && (bits[i] & 0x7f800000u) == 0x7f800000u) { bad = 1u; }
      }
      if (bad != 0u) { atomicOr(&seen, 1u); }
      workgroupBarrier();
      if (lid == 0u && atomicLoad(&seen) != 0u) { atomicOr(&flag[0], 1u); }
    }`,
});

/**
 * Sets flag[0] to 1 if any of the `n` elements of `x` is NaN or ±Inf; never clears it, so one zeroed flag can
 * collect the check over every gradient before a single readback. The data is read as u32 bit patterns
 * (exponent all ones), since WGSL has no isnan and compilers may fold float self-comparisons away.
 * Each workgroup reduces 4·256 elements in workgroup memory and at most one thread per workgroup touches the flag.
 */
export function hasNonFinite(r: KernelRunner, x: GPUBuffer, flag: GPUBuffer, n: number) {
  hasNonFiniteKernel.run(r, {}, { buffers: { bits: x, flag }, uniforms: { n }, workgroups: Math.ceil(n / PER_GROUP) });
}
