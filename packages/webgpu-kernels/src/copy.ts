/**
 * General strided copy: dst[dstOffset + Σ cᵢ·dstStridesᵢ] (+)= src[srcOffset + Σ cᵢ·srcStridesᵢ] for every
 * coordinate c of `shape`. Strides and offsets count elements, not bytes. One kernel covers the view ops:
 *
 * - permute / transpose: read with `permuteStrides`, write contiguously ([B,L,H,D] → [B,H,L,D] is perm [0,2,1,3]);
 * - slice: `srcOffset` = Σ startᵢ·strideᵢ and `srcStrides` = strideᵢ·stepᵢ of the source;
 * - write into a slice of a bigger tensor: the same on the destination side (concat = one copy per input at
 *   its offset along the axis; concat backward = one slice copy per input);
 * - `accumulate` (dst += src) for the gradient of a slice, which adds into a gradient that may already hold
 *   contributions.
 *
 * Destination coordinates must map to distinct elements (no zero or overlapping dst strides): each thread owns
 * one output element, so overlapping writes would race. Source strides may be 0 (broadcast). `src` and `dst`
 * must be different buffers (WebGPU forbids binding one buffer as read and read_write in a dispatch).
 */
import { defineKernel } from "./kernel.ts";
import { FOLDED_INDEX, type KernelRunner } from "./runner.ts";
import { MAX_RANK, rankUniforms, rankValues, stridedOffsetWgsl, unravelWgsl } from "./strided-index.ts";

const WG = 256;

export interface StridedCopySpec {
  shape: readonly number[];
  srcStrides: readonly number[];
  srcOffset?: number;
  /** Defaults to the contiguous strides of `shape`. */
  dstStrides?: readonly number[];
  dstOffset?: number;
  accumulate?: boolean;
}

/** Row-major element strides of a dense tensor. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

/** Strides that read a dense tensor of `shape` as its permutation `perm`, whose shape is `perm.map((i) => shape[i])`. */
export function permuteStrides(shape: readonly number[], perm: readonly number[]): number[] {
  if (perm.length !== shape.length || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    throw new Error(
      `permutation [${perm}] does not reorder the ${shape.length} dims of [${shape}]; give each dim index once`,
    );
  }
  const strides = contiguousStrides(shape);
  return perm.map((i) => strides[i]!);
}

const copyKernel = defineKernel({
  name: "stridedCopy",
  inputs: { src: "f32" },
  outputs: { dst: "f32" },
  uniforms: {
    n: "u32",
    srcOffset: "u32",
    dstOffset: "u32",
    ...rankUniforms("d"),
    ...rankUniforms("srcStride"),
    ...rankUniforms("dstStride"),
  },
  body: ({ rank, accumulate }: { rank: number; accumulate: boolean }) => /* wgsl */ `
    ${FOLDED_INDEX}
    @compute @workgroup_size(${WG})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      let i = foldedIndex(wid, nwg) * ${WG}u + lid;
      if (i >= p.n) { return; }
      ${unravelWgsl(rank)}
      let v = src[p.srcOffset + ${stridedOffsetWgsl(rank, "srcStride")}];
      let o = p.dstOffset + ${stridedOffsetWgsl(rank, "dstStride")};
      dst[o] = ${accumulate ? "dst[o] + v" : "v"};
    }`,
});

export function stridedCopy(r: KernelRunner, src: GPUBuffer, dst: GPUBuffer, spec: StridedCopySpec) {
  const c = resolve(spec);
  if (c.n === 0) return;
  checkBounds("src", c.dims, c.srcStrides, c.srcOffset, src.size / r.elementBytes(src));
  checkBounds("dst", c.dims, c.dstStrides, c.dstOffset, dst.size / r.elementBytes(dst));
  copyKernel.run(
    r,
    { rank: c.dims.length, accumulate: spec.accumulate ?? false },
    {
      buffers: { src, dst },
      uniforms: {
        n: c.n,
        srcOffset: c.srcOffset,
        dstOffset: c.dstOffset,
        ...rankValues("d", c.dims),
        ...rankValues("srcStride", c.srcStrides),
        ...rankValues("dstStride", c.dstStrides),
      },
      workgroups: Math.ceil(c.n / WG),
    },
  );
}

/** Returns a copy of `dst` with the strided copy applied (f32 rounding on accumulate, as on the GPU). */
export function stridedCopyCpu(src: Float32Array, dst: Float32Array, spec: StridedCopySpec): Float32Array {
  const c = resolve(spec);
  const out = dst.slice();
  for (let i = 0; i < c.n; i++) {
    let rest = i,
      si = c.srcOffset,
      di = c.dstOffset;
    for (let d = c.dims.length - 1; d >= 0; d--) {
      const k = rest % c.dims[d]!;
      rest = Math.floor(rest / c.dims[d]!);
      si += k * c.srcStrides[d]!;
      di += k * c.dstStrides[d]!;
    }
    out[di] = spec.accumulate ? Math.fround(out[di]! + src[si]!) : src[si]!;
  }
  return out;
}

/** Validates a spec and fills defaults; a rank-0 copy becomes one element of shape [1]. */
function resolve(spec: StridedCopySpec) {
  const { shape, srcStrides } = spec;
  const dstStrides = spec.dstStrides ?? contiguousStrides(shape);
  if (shape.length > MAX_RANK)
    throw new Error(`stridedCopy supports rank ≤ ${MAX_RANK}, got [${shape}]; merge contiguous dims first`);
  if (srcStrides.length !== shape.length || dstStrides.length !== shape.length) {
    throw new Error(
      `stridedCopy: shape [${shape}] needs one stride per dim, got src [${srcStrides}] and dst [${dstStrides}]`,
    );
  }
  const srcOffset = spec.srcOffset ?? 0,
    dstOffset = spec.dstOffset ?? 0;
  for (const v of [...shape, ...srcStrides, ...dstStrides, srcOffset, dstOffset]) {
    if (!Number.isInteger(v) || v < 0)
      throw new Error(`stridedCopy: shapes, strides and offsets are non-negative integers (element counts), got ${v}`);
  }
  const scalar = shape.length === 0;
  return {
    n: shape.reduce((a, b) => a * b, 1),
    dims: scalar ? [1] : [...shape],
    srcStrides: scalar ? [0] : [...srcStrides],
    dstStrides: scalar ? [0] : [...dstStrides],
    srcOffset,
    dstOffset,
  };
}

function checkBounds(side: string, dims: number[], strides: number[], offset: number, capacity: number) {
  const last = dims.reduce((acc, d, i) => acc + (d - 1) * strides[i]!, offset);
  if (last >= capacity)
    throw new Error(
      `stridedCopy: the ${side} view reaches element ${last} but its buffer holds ${capacity}; check the ${side} offset and strides`,
    );
}
