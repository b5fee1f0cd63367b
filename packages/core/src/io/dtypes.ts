/**
 * Element types of tensors in checkpoint files, and their conversion to and from float32.
 * The names are safetensors' names; PyTorch storages map onto the same set. All byte data is
 * little-endian, as safetensors prescribes and as every host WebGPU runs on is.
 */

/** Element type of a tensor in a file, as safetensors names it. */
export type FileDType =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "F8_E5M2"
  | "F8_E4M3"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U64"
  | "U32"
  | "U16"
  | "U8"
  | "BOOL";

/** A tensor read from a file: float32 values in row-major order, and the element type it had there. */
export interface LoadedTensor {
  data: Float32Array;
  shape: number[];
  dtype: FileDType;
}

export const DTYPE_BYTES: Readonly<Record<FileDType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

export function isFileDType(s: string): s is FileDType {
  return Object.hasOwn(DTYPE_BYTES, s);
}

/** Float types become float32 values by rounding (F64) or exactly (F16, BF16). */
export function isFloatDType(d: FileDType): boolean {
  return d === "F64" || d === "F32" || d === "F16" || d === "BF16";
}

/** Integer types hold indices and counts; as float32 they are exact only up to 2^24, so callers opt in. */
export function isIntegerDType(d: FileDType): boolean {
  return d[0] === "I" || d[0] === "U" || d === "BOOL";
}

/** Decodes little-endian elements of a float or integer type to float32. */
export function toFloat32(bytes: Uint8Array, dtype: FileDType): Float32Array {
  const size = DTYPE_BYTES[dtype];
  const n = bytes.length / size;
  if (!Number.isInteger(n)) throw new Error(`${bytes.length} bytes are not a whole number of ${dtype} elements`);
  if (dtype === "F32") {
    const out = new Float32Array(n);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  // Typed-array views need an offset aligned to the element size; a copy provides one.
  const b = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  switch (dtype) {
    case "F16": {
      const table = f16Table();
      const h = new Uint16Array(b.buffer, b.byteOffset, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[h[i]];
      return out;
    }
    case "BF16": {
      // bfloat16 is the upper half of a float32.
      const h = new Uint16Array(b.buffer, b.byteOffset, n);
      const bits = new Uint32Array(n);
      for (let i = 0; i < n; i++) bits[i] = h[i] << 16;
      return new Float32Array(bits.buffer);
    }
    case "F64":
      return new Float32Array(new Float64Array(b.buffer, b.byteOffset, n));
    case "I64":
      return Float32Array.from(new BigInt64Array(b.buffer, b.byteOffset, n), Number);
    case "U64":
      return Float32Array.from(new BigUint64Array(b.buffer, b.byteOffset, n), Number);
    case "I32":
      return new Float32Array(new Int32Array(b.buffer, b.byteOffset, n));
    case "U32":
      return new Float32Array(new Uint32Array(b.buffer, b.byteOffset, n));
    case "I16":
      return new Float32Array(new Int16Array(b.buffer, b.byteOffset, n));
    case "U16":
      return new Float32Array(new Uint16Array(b.buffer, b.byteOffset, n));
    case "I8":
      return new Float32Array(new Int8Array(b.buffer, b.byteOffset, n));
    case "U8":
    case "BOOL":
      return new Float32Array(b);
    default:
      throw new Error(`no conversion from ${dtype} to float32`);
  }
}

/** Encodes float32 values as little-endian F32 (a view of `data`, not a copy) or F16 (rounded to nearest even) bytes. */
export function fromFloat32(data: Float32Array, dtype: "F32" | "F16"): Uint8Array {
  if (dtype === "F32") return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const h = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) h[i] = float32ToFloat16Bits(data[i]);
  return new Uint8Array(h.buffer);
}

/** The value of IEEE half-precision bits: zeros, subnormals, normals, infinities and NaN. */
export function float16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f,
    frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Half-precision bits of a float32 value, rounded to nearest even; overflow gives ±inf, NaN stays NaN. */
export function float32ToFloat16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: shift the mantissa (with its implicit bit) down to units of 2^-24.
    const shift = 14 - e;
    if (shift > 25) return sign;
    const full = mant | 0x800000;
    const m = full >>> shift,
      rem = full & ((1 << shift) - 1),
      half = 1 << (shift - 1);
    return sign | (m + (rem > half || (rem === half && m & 1) ? 1 : 0));
  }
  // A carry out of the mantissa correctly bumps the exponent, up to infinity.
  const h = (e << 10) | (mant >>> 13),
    rem = mant & 0x1fff;
  return sign | (h + (rem > 0x1000 || (rem === 0x1000 && h & 1) ? 1 : 0));
}

let table: Float32Array | undefined;
function f16Table(): Float32Array {
  if (!table) {
    table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = float16BitsToNumber(h);
  }
  return table;
}
