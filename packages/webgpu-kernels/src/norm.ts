/**
 * Group norm (NCHW, optional fused SiLU) and layer norm, forward and backward, with CPU references.
 * Layer norm over the last dimension is group norm with one group, `cols` channels and spatial size 1
 * (per-element affine), so both share these kernels. Statistics are f32, one workgroup per normalized
 * group walking its elements (any size), reduced across the workgroup (a tree, or subgroups: see reduce.ts).
 */
import { defineKernel } from "./kernel.ts";
import { ADD, reduceEntry, workgroupReduce } from "./reduce.ts";
import { FOLDED_INDEX, type KernelRunner } from "./runner.ts";

const WG = 256;

/**
 * Threads per row for the per-group kernels: enough to give each a handful of elements. A 256-thread tree
 * over a 32-element row (CLIP's tiny test configs, layer norm over narrow widths) wastes most of the
 * barrier steps; on lavapipe, where barriers are expensive, it made group norm 10× slower than needed.
 */
export function rowThreads(elements: number): number {
  return Math.min(WG, Math.max(32, 2 ** Math.ceil(Math.log2(Math.max(1, elements / 4)))));
}

export interface GroupNormShape {
  batch: number;
  channels: number;
  /** H·W. */
  spatial: number;
  groups: number;
  /** Apply SiLU after the affine (GroupNorm → SiLU, as in every SD resnet block). */
  silu?: boolean;
}
export interface GroupNormOptions extends GroupNormShape {
  eps: number;
}
export interface LayerNormShape {
  rows: number;
  cols: number;
}
export interface LayerNormOptions extends LayerNormShape {
  eps: number;
}

function channelsPerGroup(o: GroupNormShape): number {
  if (o.channels % o.groups !== 0)
    throw new Error(
      `groupNorm: ${o.channels} channels do not split into ${o.groups} groups; pick a group count that divides the channels`,
    );
  return o.channels / o.groups;
}

/** Every per-group kernel takes the same uniforms; `eps` matters to the forward only. */
const UNIFORMS = {
  rows: "u32",
  groups: "u32",
  channelsPerGroup: "u32",
  spatial: "u32",
  channels: "u32",
  batch: "u32",
  eps: "f32",
} as const;
const uniforms = (o: GroupNormShape, eps = 0) => ({
  rows: o.batch * o.groups,
  groups: o.groups,
  channelsPerGroup: channelsPerGroup(o),
  spatial: o.spatial,
  channels: o.channels,
  batch: o.batch,
  eps,
});

/** Which optional buffers a kernel binds, the fused SiLU, the row threads and the reduction's form. */
type RowSpec = { weight: boolean; bias: boolean; silu: boolean; wg: number; subgroups: boolean };
const ifWeight = (s: { weight: boolean }) => (s.weight ? "f32" : null);
const ifBias = (s: { bias: boolean }) => (s.bias ? "f32" : null);
const enables = (s: { subgroups: boolean }) => (s.subgroups ? ["subgroups"] : []);

/** Entry point of the per-group kernels: one workgroup per (batch, group) row, elements base..base+n; the body follows. */
const rowMain = (wg: number, subgroups: boolean) => /* wgsl */ `
      @compute @workgroup_size(${wg})
      fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32${reduceEntry(subgroups).params}) {
        let row = foldedIndex(wid, nwg);
        if (row >= p.rows) { return; }
        let n = p.channelsPerGroup * p.spatial;
        let base = row * n;
        let c0 = (row % p.groups) * p.channelsPerGroup;`;

const groupNormKernel = defineKernel({
  name: "groupNorm",
  inputs: { x: "f32", weight: ifWeight, bias: ifBias },
  outputs: { out: "f32", mean: "f32", rstd: "f32" },
  uniforms: UNIFORMS,
  enables,
  body: ({ weight, bias, silu, wg, subgroups }: RowSpec) => {
    const sg = reduceEntry(subgroups).args;
    return /* wgsl */ `
      ${FOLDED_INDEX}
      ${workgroupReduce("workgroupSum", "f32", ADD, wg, { subgroups })}
      ${rowMain(wg, subgroups)}
        // Two passes over values shifted by the group's first one: differences of nearby f32 values are
        // exact, so a large common offset (1e4 + noise) costs no precision in the mean or the variance.
        let shift = x[base];
        var s = 0.0;
        for (var i = lid; i < n; i += ${wg}u) { s += x[base + i] - shift; }
        let m = workgroupSum(s, lid, 0u${sg}) / f32(n);
        var q = 0.0;
        for (var i = lid; i < n; i += ${wg}u) { let d = x[base + i] - shift - m; q += d * d; }
        let r = 1.0 / sqrt(workgroupSum(q, lid, 0u${sg}) / f32(n) + p.eps);
        if (lid == 0u) { mean[row] = shift + m; rstd[row] = r; }
        for (var i = lid; i < n; i += ${wg}u) {
          let c = c0 + i / p.spatial;
          let y = (x[base + i] - shift - m) * r${weight ? " * weight[c]" : ""}${bias ? " + bias[c]" : ""};
          out[base + i] = ${silu ? "y / (1.0 + exp(-y))" : "y"};
        }
      }`;
  },
});

/** Writes out = [SiLU](x̂·weight + bias) and the per-(batch, group) mean and 1/σ for the backward. */
export function groupNorm(
  r: KernelRunner,
  x: GPUBuffer,
  weight: GPUBuffer | null,
  bias: GPUBuffer | null,
  out: GPUBuffer,
  mean: GPUBuffer,
  rstd: GPUBuffer,
  o: GroupNormOptions,
) {
  const spec = {
    weight: !!weight,
    bias: !!bias,
    silu: !!o.silu,
    wg: rowThreads(channelsPerGroup(o) * o.spatial),
    subgroups: r.subgroups,
  };
  groupNormKernel.run(r, spec, {
    buffers: { x, weight, bias, out, mean, rstd },
    uniforms: uniforms(o, o.eps),
    workgroups: o.batch * o.groups,
  });
}

/** WGSL computing x̂ and gy, the gradient at the affine output (through the SiLU when fused), for element `i` of channel `c` in `row`. */
function affineGrad(weight: boolean, bias: boolean, silu: boolean): string {
  return /* wgsl */ `
      fn xHat(i: u32, row: u32) -> f32 { return (x[i] - mean[row]) * rstd[row]; }
      fn affineGrad(i: u32, c: u32, xh: f32) -> f32 {
        ${
          silu
            ? `let y = xh${weight ? " * weight[c]" : ""}${bias ? " + bias[c]" : ""};
        let sig = 1.0 / (1.0 + exp(-y));
        return gradOut[i] * sig * (1.0 + y * (1.0 - sig));`
            : "return gradOut[i];"
        }
      }`;
}

const groupNormBackwardKernel = defineKernel({
  name: "groupNormBackward",
  inputs: { x: "f32", weight: ifWeight, bias: ifBias, mean: "f32", rstd: "f32", gradOut: "f32" },
  outputs: { gradX: "f32" },
  uniforms: UNIFORMS,
  enables,
  body: ({ weight, bias, silu, wg, subgroups }: RowSpec) => {
    const g = `affineGrad(base + i, c0 + i / p.spatial, xh)${weight ? " * weight[c0 + i / p.spatial]" : ""}`;
    return /* wgsl */ `
      ${FOLDED_INDEX}
      ${affineGrad(weight, bias, silu)}
      ${workgroupReduce("workgroupSum", "vec2<f32>", ADD, wg, { subgroups })}
      ${rowMain(wg, subgroups)}
        var acc = vec2(0.0);
        for (var i = lid; i < n; i += ${wg}u) {
          let xh = xHat(base + i, row);
          let g = ${g};
          acc += vec2(g, g * xh);
        }
        let means = workgroupSum(acc, lid, 0u${reduceEntry(subgroups).args}) / f32(n);
        let r = rstd[row];
        for (var i = lid; i < n; i += ${wg}u) {
          let xh = xHat(base + i, row);
          let g = ${g};
          gradX[base + i] = r * (g - means.x - xh * means.y);
        }
      }`;
  },
});

/**
 * gradX = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ · x̂)) with ĝ = gy · weight; gradWeight = Σ gy · x̂ and
 * gradBias = Σ gy over batch and spatial. With `silu` the pre-activation is recomputed from x, mean, rstd,
 * weight and bias, which is why `bias` is an input here.
 */
export function groupNormBackward(
  r: KernelRunner,
  x: GPUBuffer,
  weight: GPUBuffer | null,
  bias: GPUBuffer | null,
  mean: GPUBuffer,
  rstd: GPUBuffer,
  gradOut: GPUBuffer,
  gradX: GPUBuffer,
  gradWeight: GPUBuffer | null,
  gradBias: GPUBuffer | null,
  o: GroupNormShape,
) {
  const silu = !!o.silu,
    useBias = silu && !!bias;
  const spec = {
    weight: !!weight,
    bias: useBias,
    silu,
    wg: rowThreads(channelsPerGroup(o) * o.spatial),
    subgroups: r.subgroups,
  };
  groupNormBackwardKernel.run(r, spec, {
    buffers: { x, weight, bias: useBias ? bias : null, mean, rstd, gradOut, gradX },
    uniforms: uniforms(o),
    workgroups: o.batch * o.groups,
  });
  if (gradWeight || gradBias) affineBackward(r, x, weight, bias, mean, rstd, gradOut, gradWeight, gradBias, o);
}

type AffineSpec = {
  weight: boolean;
  bias: boolean;
  silu: boolean;
  gradWeight: boolean;
  gradBias: boolean;
  columns: number;
  subgroups: boolean;
};

/**
 * Per-channel Σ gy·x̂ and Σ gy over batch and spatial. A workgroup covers `columns` channels: with a long
 * spatial axis all threads walk one channel's contiguous run; with spatial 1 (layer norm) neighbouring
 * threads take neighbouring channels so that their reads stay contiguous.
 */
const affineBackwardKernel = defineKernel({
  name: "groupNormAffineBackward",
  inputs: { x: "f32", weight: ifWeight, bias: ifBias, mean: "f32", rstd: "f32", gradOut: "f32" },
  outputs: {
    gradWeight: (s: AffineSpec) => (s.gradWeight ? "f32" : null),
    gradBias: (s: AffineSpec) => (s.gradBias ? "f32" : null),
  },
  uniforms: UNIFORMS,
  enables,
  body: ({ weight, bias, silu, gradWeight, gradBias, columns, subgroups }: AffineSpec) => {
    const lanes = WG / columns;
    return /* wgsl */ `
      ${FOLDED_INDEX}
      ${affineGrad(weight, bias, silu)}
      ${workgroupReduce("workgroupSum", "vec2<f32>", ADD, lanes, { columns, subgroups })}
      @compute @workgroup_size(${WG})
      fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32${reduceEntry(subgroups).params}) {
        let column = lid % ${columns}u;
        let lane = lid / ${columns}u;
        let c = foldedIndex(wid, nwg) * ${columns}u + column;
        var acc = vec2(0.0);
        if (c < p.channels) {
          for (var j = lane; j < p.batch * p.spatial; j += ${lanes}u) {
            let batch = j / p.spatial;
            let i = (batch * p.channels + c) * p.spatial + j % p.spatial;
            let xh = xHat(i, batch * p.groups + c / p.channelsPerGroup);
            let g = affineGrad(i, c, xh);
            acc += vec2(g * xh, g);
          }
        }
        let total = workgroupSum(acc, lane, column${reduceEntry(subgroups).args});
        if (lane == 0u && c < p.channels) {
          ${gradWeight ? "gradWeight[c] = total.x;" : ""}
          ${gradBias ? "gradBias[c] = total.y;" : ""}
        }
      }`;
  },
});

function affineBackward(
  r: KernelRunner,
  x: GPUBuffer,
  weight: GPUBuffer | null,
  bias: GPUBuffer | null,
  mean: GPUBuffer,
  rstd: GPUBuffer,
  gradOut: GPUBuffer,
  gradWeight: GPUBuffer | null,
  gradBias: GPUBuffer | null,
  o: GroupNormShape,
) {
  const columns = o.spatial >= 32 ? 1 : 32;
  // Weight and bias only enter through the SiLU derivative.
  const silu = !!o.silu,
    useWeight = silu && !!weight,
    useBias = silu && !!bias;
  const spec = {
    weight: useWeight,
    bias: useBias,
    silu,
    gradWeight: !!gradWeight,
    gradBias: !!gradBias,
    columns,
    // Subgroups combine lanes of one column; with 32 columns a subgroup holds neighbouring channels instead.
    subgroups: r.subgroups && columns === 1,
  };
  affineBackwardKernel.run(r, spec, {
    buffers: {
      x,
      weight: useWeight ? weight : null,
      bias: useBias ? bias : null,
      mean,
      rstd,
      gradOut,
      gradWeight,
      gradBias,
    },
    uniforms: uniforms(o),
    workgroups: Math.ceil(o.channels / columns),
  });
}

const asGroupNorm = (o: LayerNormShape) => ({ batch: o.rows, channels: o.cols, spatial: 1, groups: 1 });

/** Normalizes each row of [rows, cols]; weight and bias have `cols` elements. */
export function layerNorm(
  r: KernelRunner,
  x: GPUBuffer,
  weight: GPUBuffer | null,
  bias: GPUBuffer | null,
  out: GPUBuffer,
  mean: GPUBuffer,
  rstd: GPUBuffer,
  o: LayerNormOptions,
) {
  groupNorm(r, x, weight, bias, out, mean, rstd, { ...asGroupNorm(o), eps: o.eps });
}

export function layerNormBackward(
  r: KernelRunner,
  x: GPUBuffer,
  weight: GPUBuffer | null,
  mean: GPUBuffer,
  rstd: GPUBuffer,
  gradOut: GPUBuffer,
  gradX: GPUBuffer,
  gradWeight: GPUBuffer | null,
  gradBias: GPUBuffer | null,
  o: LayerNormShape,
) {
  groupNormBackward(r, x, weight, null, mean, rstd, gradOut, gradX, gradWeight, gradBias, asGroupNorm(o));
}

export interface NormStatistics {
  out: Float64Array;
  mean: Float64Array;
  rstd: Float64Array;
}
export interface NormGradients {
  gradX: Float64Array;
  gradWeight: Float64Array;
  gradBias: Float64Array;
}

type Values = ArrayLike<number>;
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

export function groupNormCpu(
  x: Values,
  weight: Values | null,
  bias: Values | null,
  o: GroupNormOptions,
): NormStatistics {
  const cpg = channelsPerGroup(o),
    n = cpg * o.spatial,
    rows = o.batch * o.groups;
  const out = new Float64Array(rows * n),
    mean = new Float64Array(rows),
    rstd = new Float64Array(rows);
  for (let row = 0; row < rows; row++) {
    const base = row * n,
      c0 = (row % o.groups) * cpg;
    let s = 0,
      q = 0;
    for (let i = 0; i < n; i++) s += x[base + i]!;
    const m = s / n;
    for (let i = 0; i < n; i++) q += (x[base + i]! - m) ** 2;
    const r = 1 / Math.sqrt(q / n + o.eps);
    mean[row] = m;
    rstd[row] = r;
    for (let i = 0; i < n; i++) {
      const c = c0 + Math.floor(i / o.spatial);
      const y = (x[base + i]! - m) * r * (weight ? weight[c]! : 1) + (bias ? bias[c]! : 0);
      out[base + i] = o.silu ? y * sigmoid(y) : y;
    }
  }
  return { out, mean, rstd };
}

export function groupNormBackwardCpu(
  x: Values,
  weight: Values | null,
  bias: Values | null,
  mean: Values,
  rstd: Values,
  gradOut: Values,
  o: GroupNormShape,
): NormGradients {
  const cpg = channelsPerGroup(o),
    n = cpg * o.spatial,
    rows = o.batch * o.groups;
  const gradX = new Float64Array(rows * n),
    gradWeight = new Float64Array(o.channels),
    gradBias = new Float64Array(o.channels);
  const xh = new Float64Array(n),
    gy = new Float64Array(n);
  for (let row = 0; row < rows; row++) {
    const base = row * n,
      c0 = (row % o.groups) * cpg;
    let meanG = 0,
      meanGX = 0;
    for (let i = 0; i < n; i++) {
      const c = c0 + Math.floor(i / o.spatial),
        w = weight ? weight[c]! : 1;
      xh[i] = (x[base + i]! - mean[row]!) * rstd[row]!;
      const y = xh[i]! * w + (bias ? bias[c]! : 0),
        s = sigmoid(y);
      gy[i] = gradOut[base + i]! * (o.silu ? s * (1 + y * (1 - s)) : 1);
      gradWeight[c] += gy[i]! * xh[i]!;
      gradBias[c] += gy[i]!;
      meanG += (gy[i]! * w) / n;
      meanGX += (gy[i]! * w * xh[i]!) / n;
    }
    for (let i = 0; i < n; i++) {
      const w = weight ? weight[c0 + Math.floor(i / o.spatial)]! : 1;
      gradX[base + i] = rstd[row]! * (gy[i]! * w - meanG - xh[i]! * meanGX);
    }
  }
  return { gradX, gradWeight, gradBias };
}

export function layerNormCpu(
  x: Values,
  weight: Values | null,
  bias: Values | null,
  o: LayerNormOptions,
): NormStatistics {
  return groupNormCpu(x, weight, bias, { ...asGroupNorm(o), eps: o.eps });
}

export function layerNormBackwardCpu(
  x: Values,
  weight: Values | null,
  mean: Values,
  rstd: Values,
  gradOut: Values,
  o: LayerNormShape,
): NormGradients {
  return groupNormBackwardCpu(x, weight, null, mean, rstd, gradOut, asGroupNorm(o));
}
