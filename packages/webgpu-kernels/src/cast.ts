/**
 * f32 → f16 storage: two values per u32 word through WGSL's `pack2x16float`, so the cast needs no `shader-f16`.
 * Frozen weights made or loaded as f32 are halved this way; kernels read the result through the runner's f16
 * bindings (storage-bindings.ts).
 */
import { defineKernel } from "./kernel.ts";
import { FOLDED_INDEX, type KernelRunner } from "./runner.ts";

const WG = 256;

// `out` is declared u32, so the runner's f16 pass leaves it alone even when the buffer is marked f16.
const castToF16Kernel = defineKernel({
  name: "castToF16",
  inputs: { x: "f32" },
  outputs: { out: "u32" },
  uniforms: { n: "u32", words: "u32" },
  body: () => /* wgsl */ `
    ${FOLDED_INDEX}
    @compute @workgroup_size(${WG})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      let w = foldedIndex(wid, nwg) * ${WG}u + lid;
      if (w >= p.words) { return; }
      let hi = select(0.0, x[2u * w + 1u], 2u * w + 1u < p.n);
      out[w] = pack2x16float(vec2<f32>(x[2u * w], hi));
    }`,
});

/** `out` (⌈n/2⌉ u32 words) = the n values of `x` rounded to f16; an odd tail pairs with 0. */
export function castToF16(r: KernelRunner, x: GPUBuffer, out: GPUBuffer, n: number) {
  const words = Math.ceil(n / 2);
  castToF16Kernel.run(r, {}, { buffers: { x, out }, uniforms: { n, words }, workgroups: Math.ceil(words / WG) });
}

/** The nearest f16 value of each element (ties to even), as a number: the CPU reference of `castToF16`. */
export function roundToF16Cpu(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => {
    const f = Math.fround(v);
    if (!Number.isFinite(f) || f === 0) return f;
    const a = Math.abs(f);
    if (a >= 65520) return Math.sign(f) * Infinity; // past the largest half (65504) by more than half an ulp
    // Spacing of halves near |f|: 2^(e−10) for normals, 2^−24 for subnormals.
    const ulp = 2 ** (Math.max(Math.floor(Math.log2(a)), -14) - 10);
    const q = a / ulp,
      lo = Math.floor(q),
      rest = q - lo;
    const m = rest > 0.5 || (rest === 0.5 && lo % 2 === 1) ? lo + 1 : lo;
    return Math.sign(f) * m * ulp;
  });
}
