/**
 * Spatial resampling of NCHW tensors: nearest 2× upsampling (the UNet/VAE upsamplers) and adaptive
 * average pooling (reward preprocessing: 512×512 images to CLIP's 224×224), each with its backward.
 * One thread per element of the tensor being written, so no two threads write the same element.
 */
import { defineKernel } from "./kernel.ts";
import { FOLDED_INDEX, type KernelRunner } from "./runner.ts";

const WG = 256;

export interface ResampleShape {
  batch: number;
  channels: number;
  height: number;
  width: number;
}
export interface PoolShape extends ResampleShape {
  outH: number;
  outW: number;
}

/** PyTorch's adaptive pooling bin of output index `i`: [⌊i·size/out⌋, ⌈(i+1)·size/out⌉). */
const ADAPTIVE_BIN = /* wgsl */ `
      fn binStart(i: u32, size: u32, out: u32) -> u32 { return (i * size) / out; }
      fn binEnd(i: u32, size: u32, out: u32) -> u32 { return ((i + 1u) * size + out - 1u) / out; }`;

/** A one-thread-per-element kernel over `p.n` elements; `body` sees `i`, `p`, `src` and `dst`. */
function perElementKernel<U extends string>(name: string, uniforms: Record<U, "u32">, body: string, helpers = "") {
  return defineKernel({
    name,
    inputs: { src: "f32" },
    outputs: { dst: "f32" },
    uniforms: { n: "u32", ...uniforms } as Record<U | "n", "u32">,
    body: () => /* wgsl */ `
      ${FOLDED_INDEX}
      ${helpers}
      @compute @workgroup_size(${WG})
      fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
        let i = foldedIndex(wid, nwg) * ${WG}u + lid;
        if (i >= p.n) { return; }
        ${body}
      }`,
  });
}

const IMAGE = { h: "u32", w: "u32" } as const;
const POOL = { h: "u32", w: "u32", outH: "u32", outW: "u32" } as const;

const upsampleKernel = perElementKernel(
  "upsampleNearest2x",
  IMAGE,
  /* wgsl */ `
        let w2 = p.w * 2u; let h2 = p.h * 2u;
        let ox = i % w2; let oy = (i / w2) % h2; let bc = i / (w2 * h2);
        dst[i] = src[(bc * p.h + oy / 2u) * p.w + ox / 2u];`,
);

const upsampleGradKernel = perElementKernel(
  "upsampleNearest2xGrad",
  IMAGE,
  /* wgsl */ `
        let w2 = p.w * 2u;
        let x = i % p.w; let y = (i / p.w) % p.h; let bc = i / (p.w * p.h);
        let top = (bc * p.h * 2u + y * 2u) * w2 + x * 2u;
        dst[i] = src[top] + src[top + 1u] + src[top + w2] + src[top + w2 + 1u];`,
);

const poolKernel = perElementKernel(
  "adaptiveAvgPool2d",
  POOL,
  /* wgsl */ `
        let j = i % p.outW; let oi = (i / p.outW) % p.outH; let bc = i / (p.outW * p.outH);
        let y0 = binStart(oi, p.h, p.outH); let y1 = binEnd(oi, p.h, p.outH);
        let x0 = binStart(j, p.w, p.outW); let x1 = binEnd(j, p.w, p.outW);
        var s = 0.0;
        for (var y = y0; y < y1; y++) {
          for (var x = x0; x < x1; x++) { s += src[(bc * p.h + y) * p.w + x]; }
        }
        dst[i] = s / f32((y1 - y0) * (x1 - x0));`,
  ADAPTIVE_BIN,
);

// Output rows whose bin holds y run from ⌊y·outH/H⌋ to ⌈(y+1)·outH/H⌉ − 1 (the bin rule solved for i).
const poolGradKernel = perElementKernel(
  "adaptiveAvgPool2dGrad",
  POOL,
  /* wgsl */ `
        let x = i % p.w; let y = (i / p.w) % p.h; let bc = i / (p.w * p.h);
        let i0 = (y * p.outH) / p.h; let i1 = min(((y + 1u) * p.outH + p.h - 1u) / p.h, p.outH);
        let j0 = (x * p.outW) / p.w; let j1 = min(((x + 1u) * p.outW + p.w - 1u) / p.w, p.outW);
        var s = 0.0;
        for (var oi = i0; oi < i1; oi++) {
          let rows = binEnd(oi, p.h, p.outH) - binStart(oi, p.h, p.outH);
          for (var j = j0; j < j1; j++) {
            let cols = binEnd(j, p.w, p.outW) - binStart(j, p.w, p.outW);
            s += src[(bc * p.outH + oi) * p.outW + j] / f32(rows * cols);
          }
        }
        dst[i] = s;`,
  ADAPTIVE_BIN,
);

const grid = (n: number) => Math.ceil(n / WG);

/** out[b, c, y, x] = x[b, c, ⌊y/2⌋, ⌊x/2⌋]; out is [B, C, 2H, 2W]. */
export function upsampleNearest2x(r: KernelRunner, x: GPUBuffer, out: GPUBuffer, o: ResampleShape) {
  const n = o.batch * o.channels * o.height * o.width * 4;
  upsampleKernel.run(
    r,
    {},
    { buffers: { src: x, dst: out }, uniforms: { n, h: o.height, w: o.width }, workgroups: grid(n) },
  );
}

/** gradIn[b, c, y, x] = Σ of the 2×2 block of gradOut it was copied to. */
export function upsampleNearest2xGrad(r: KernelRunner, gradOut: GPUBuffer, gradIn: GPUBuffer, o: ResampleShape) {
  const n = o.batch * o.channels * o.height * o.width;
  upsampleGradKernel.run(
    r,
    {},
    { buffers: { src: gradOut, dst: gradIn }, uniforms: { n, h: o.height, w: o.width }, workgroups: grid(n) },
  );
}

/** out[b, c, i, j] = mean of x over the bin rows(i) × cols(j); out is [B, C, outH, outW]. */
export function adaptiveAvgPool2d(r: KernelRunner, x: GPUBuffer, out: GPUBuffer, o: PoolShape) {
  const n = o.batch * o.channels * o.outH * o.outW;
  poolKernel.run(r, {}, { buffers: { src: x, dst: out }, uniforms: poolUniforms(n, o), workgroups: grid(n) });
}

/**
 * gradIn[b, c, y, x] = Σ over the bins containing (y, x) of gradOut / bin area; bins overlap, so a pixel
 * may sit in two.
 */
export function adaptiveAvgPool2dGrad(r: KernelRunner, gradOut: GPUBuffer, gradIn: GPUBuffer, o: PoolShape) {
  const n = o.batch * o.channels * o.height * o.width;
  poolGradKernel.run(
    r,
    {},
    { buffers: { src: gradOut, dst: gradIn }, uniforms: poolUniforms(n, o), workgroups: grid(n) },
  );
}

const poolUniforms = (n: number, o: PoolShape) => ({ n, h: o.height, w: o.width, outH: o.outH, outW: o.outW });

// CPU references, accumulated in float64.

export function upsampleNearest2xCpu(x: ArrayLike<number>, o: ResampleShape): Float64Array {
  const { height: h, width: w } = o;
  const out = new Float64Array(o.batch * o.channels * h * w * 4);
  for (let i = 0; i < out.length; i++) {
    const ox = i % (2 * w),
      oy = Math.floor(i / (2 * w)) % (2 * h),
      bc = Math.floor(i / (4 * h * w));
    out[i] = x[(bc * h + (oy >> 1)) * w + (ox >> 1)]!;
  }
  return out;
}

export function upsampleNearest2xGradCpu(gradOut: ArrayLike<number>, o: ResampleShape): Float64Array {
  const { height: h, width: w } = o;
  const gin = new Float64Array(o.batch * o.channels * h * w);
  for (let i = 0; i < gradOut.length; i++) {
    const ox = i % (2 * w),
      oy = Math.floor(i / (2 * w)) % (2 * h),
      bc = Math.floor(i / (4 * h * w));
    gin[(bc * h + (oy >> 1)) * w + (ox >> 1)] += gradOut[i]!;
  }
  return gin;
}

/** [start, end) of PyTorch's adaptive pooling bin `i` when `size` is pooled to `out`. */
export function adaptiveBin(i: number, size: number, out: number): [number, number] {
  return [Math.floor((i * size) / out), Math.ceil(((i + 1) * size) / out)];
}

export function adaptiveAvgPool2dCpu(x: ArrayLike<number>, o: PoolShape): Float64Array {
  const out = new Float64Array(o.batch * o.channels * o.outH * o.outW);
  forEachBin(o, (xi, oi, area) => {
    out[oi] += x[xi]! / area;
  });
  return out;
}

export function adaptiveAvgPool2dGradCpu(gradOut: ArrayLike<number>, o: PoolShape): Float64Array {
  const gin = new Float64Array(o.batch * o.channels * o.height * o.width);
  forEachBin(o, (xi, oi, area) => {
    gin[xi] += gradOut[oi]! / area;
  });
  return gin;
}

/** Calls `visit(inputIndex, outputIndex, binArea)` for every input pixel of every output bin. */
function forEachBin(o: PoolShape, visit: (xi: number, oi: number, area: number) => void) {
  for (let bc = 0; bc < o.batch * o.channels; bc++)
    for (let i = 0; i < o.outH; i++) {
      const [y0, y1] = adaptiveBin(i, o.height, o.outH);
      for (let j = 0; j < o.outW; j++) {
        const [x0, x1] = adaptiveBin(j, o.width, o.outW);
        const area = (y1 - y0) * (x1 - x0),
          oi = (bc * o.outH + i) * o.outW + j;
        for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) visit((bc * o.height + y) * o.width + x, oi, area);
      }
    }
}
