/**
 * Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
 * SC'11), so a value depends only on (seed, element index) and is the same on every device and batch split.
 *
 * Mapping from index to counter: element e = offset + i of the stream (i indexes `out`) takes lane e mod 4 of
 * the Philox block with counter (lo, hi, 0, 0) of the 64-bit block number e div 4, under the key (seed lo,
 * seed hi). Drawing n values and then n more at offset n therefore equals drawing 2n at once.
 *
 * Uniforms: the top 24 bits of a lane, u = (bits + 1)·2⁻²⁴ in (0, 1]: exact in f32, so GPU and CPU agree bit for bit.
 * Normals: Box-Muller on the block's lane pairs (0,1) and (2,3): lane 2j gives r·cos θ, lane 2j+1 gives r·sin θ,
 * with r = √(−2 ln u₂ⱼ) and θ = 2π u₂ⱼ₊₁. WGSL's own log/sin/cos may be as coarse as 2⁻¹¹ absolute, so the kernel
 * evaluates them with explicit f32 series: θ's quadrant is split off exactly from u's 24-bit grid, and ln uses
 * exponent extraction plus the atanh series. That keeps normals within ~1e-6 of the f64 reference everywhere.
 * The uniform and normal streams of one seed share their bits: use different seeds (or offsets) for independence.
 */
import { defineKernel } from "./kernel.ts";
import { FOLDED_INDEX, type KernelRunner } from "./runner.ts";

const WG = 256;

/** A JS integer in [0, 2⁵³] or an explicit [lo, hi] pair of u32 words. */
export type Seed = number | readonly [number, number];

export interface RandomOptions {
  n: number;
  seed: Seed;
  /** Index of out[0] in the stream (an integer below 2⁵³); defaults to 0. */
  offset?: number;
}

const M0 = 0xd2511f53,
  M1 = 0xcd9e8d57,
  W0 = 0x9e3779b9,
  W1 = 0xbb67ae85;

const PHILOX = /* wgsl */ `
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
  // WGSL has no 64-bit product: build the high word from 16-bit halves.
  let a0 = a & 0xffffu; let a1 = a >> 16u; let b0 = b & 0xffffu; let b1 = b >> 16u;
  let p01 = a0 * b1; let p10 = a1 * b0;
  let mid = ((a0 * b0) >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return vec2<u32>(a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u), a * b);
}
fn philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter; var k = key;
  for (var i = 0u; i < 10u; i++) {
    if (i > 0u) { k += vec2<u32>(${W0}u, ${W1}u); }
    let a = mulhilo(${M0}u, c.x); let b = mulhilo(${M1}u, c.z);
    c = vec4<u32>(b.x ^ c.y ^ k.x, b.y, a.x ^ c.w ^ k.y, a.y);
  }
  return c;
}
fn unitFloat(bits: u32) -> f32 { return f32((bits >> 8u) + 1u) * ${2 ** -24}; }
`;

const BOX_MULLER = /* wgsl */ `
fn lnSeries(x: f32) -> f32 {
  // x = m·2^e with m in [√½, √2); ln m = 2 atanh(s), s = (m−1)/(m+1), |s| < 0.172, so five terms reach f32 precision.
  let fe = frexp(x);
  var m = fe.fract; var e = f32(fe.exp);
  if (m < 0.70710678) { m *= 2.0; e -= 1.0; }
  let s = (m - 1.0) / (m + 1.0); let s2 = s * s;
  let series = 2.0 * s * (1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0)))));
  return e * 0.693145751953125 + (e * 1.4286068202862268e-6 + series); // ln 2 = hi + lo, hi exact times any exponent
}
fn sinCosTurns(u: f32) -> vec2<f32> {
  // (cos, sin) of 2πu. u lies on a 2⁻²⁴ grid, so the quarter-turn q and remainder f = u − q/4 are exact.
  let q = round(4.0 * u);
  let x = (u - 0.25 * q) * 6.283185307179586;
  let x2 = x * x;
  let s = x * (1.0 - x2 / 6.0 * (1.0 - x2 / 20.0 * (1.0 - x2 / 42.0 * (1.0 - x2 / 72.0))));
  let c = 1.0 - x2 / 2.0 * (1.0 - x2 / 12.0 * (1.0 - x2 / 30.0 * (1.0 - x2 / 56.0 * (1.0 - x2 / 90.0))));
  switch (u32(q) & 3u) {
    case 0u: { return vec2<f32>(c, s); }
    case 1u: { return vec2<f32>(-s, c); }
    case 2u: { return vec2<f32>(-c, -s); }
    default: { return vec2<f32>(s, -c); }
  }
}
fn boxMuller(u1: f32, u2: f32) -> vec2<f32> { return sqrt(-2.0 * lnSeries(u1)) * sinCosTurns(u2); }
`;

/** The four values of one Philox block `b`, per distribution. */
const DRAW = {
  uniform: "vec4<f32>(unitFloat(b.x), unitFloat(b.y), unitFloat(b.z), unitFloat(b.w))",
  normal: "vec4<f32>(boxMuller(unitFloat(b.x), unitFloat(b.y)), boxMuller(unitFloat(b.z), unitFloat(b.w)))",
} as const;

/** One thread per Philox block; the first and last blocks are partial when offset or n are not multiples of 4. */
const randomKernel = defineKernel({
  name: "random",
  inputs: {},
  outputs: { out: "f32" },
  uniforms: { n: "u32", phase: "u32", blockLo: "u32", blockHi: "u32", seedLo: "u32", seedHi: "u32", blocks: "u32" },
  body: ({ distribution }: { distribution: keyof typeof DRAW }) => /* wgsl */ `
    ${FOLDED_INDEX} ${PHILOX} ${distribution === "normal" ? BOX_MULLER : ""}
    @compute @workgroup_size(${WG})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      let t = foldedIndex(wid, nwg) * ${WG}u + lid;
      if (t >= p.blocks) { return; }
      let lo = p.blockLo + t;
      let b = philox(vec4<u32>(lo, p.blockHi + select(0u, 1u, lo < t), 0u, 0u), vec2<u32>(p.seedLo, p.seedHi));
      let v = ${DRAW[distribution]};
      for (var lane = 0u; lane < 4u; lane++) {
        let i = 4u * t + lane;
        if (i >= p.phase && i - p.phase < p.n) { out[i - p.phase] = v[lane]; }
      }
    }`,
});

/** out[i] = uniform in (0, 1] of stream element offset + i. */
export function randomUniform(r: KernelRunner, out: GPUBuffer, o: RandomOptions) {
  launch(r, out, o, "uniform");
}

/** out[i] = standard normal of stream element offset + i. */
export function randomNormal(r: KernelRunner, out: GPUBuffer, o: RandomOptions) {
  launch(r, out, o, "normal");
}

function launch(r: KernelRunner, out: GPUBuffer, o: RandomOptions, distribution: keyof typeof DRAW) {
  const [seedLo, seedHi] = seedWords(o.seed);
  const offset = o.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new Error(`random offset must be an integer in [0, 2^53), got ${offset}`);
  const block = Math.floor(offset / 4),
    phase = offset % 4;
  const blocks = Math.ceil((phase + o.n) / 4);
  randomKernel.run(
    r,
    { distribution },
    {
      buffers: { out },
      uniforms: {
        n: o.n,
        phase,
        blockLo: block % 2 ** 32,
        blockHi: Math.floor(block / 2 ** 32),
        seedLo,
        seedHi,
        blocks,
      },
      workgroups: Math.ceil(blocks / WG),
    },
  );
}

function seedWords(seed: Seed): [number, number] {
  if (typeof seed === "number") {
    if (!Number.isInteger(seed) || seed < 0 || seed > 2 ** 53)
      throw new Error(`random seed must be an integer in [0, 2^53] or a [lo, hi] pair of u32, got ${seed}`);
    return [seed % 2 ** 32, Math.floor(seed / 2 ** 32)];
  }
  if (seed.some((w) => !Number.isInteger(w) || w < 0 || w >= 2 ** 32))
    throw new Error(`random seed words must be u32, got [${seed}]`);
  return [seed[0], seed[1]];
}

function mulhilo(a: number, b: number): [number, number] {
  const a0 = a & 0xffff,
    a1 = a >>> 16,
    b0 = b & 0xffff,
    b1 = b >>> 16;
  const p01 = a0 * b1,
    p10 = a1 * b0;
  const mid = ((a0 * b0) >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return [(a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) >>> 0, Math.imul(a, b) >>> 0];
}

/** Philox4x32-10 of one counter block; exported for the known-answer test against Random123's vectors. */
export function philox4x32(counter: readonly number[], key: readonly number[]): [number, number, number, number] {
  let [c0, c1, c2, c3] = counter as [number, number, number, number];
  let [k0, k1] = key as [number, number];
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const [hi0, lo0] = mulhilo(M0, c0),
      [hi1, lo1] = mulhilo(M1, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
  }
  return [c0, c1, c2, c3];
}

/** The raw Philox lanes of stream elements offset .. offset + n − 1. */
function streamBits(n: number, seed: Seed, offset: number): Uint32Array {
  const key = seedWords(seed);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; ) {
    const e = offset + i,
      block = Math.floor(e / 4);
    const lanes = philox4x32([block % 2 ** 32, Math.floor(block / 2 ** 32), 0, 0], key);
    for (let lane = e % 4; lane < 4 && i < n; lane++, i++) out[i] = lanes[lane]!;
  }
  return out;
}

const toUniform = (bits: number) => ((bits >>> 8) + 1) * 2 ** -24;

export function randomUniformCpu(n: number, seed: Seed, offset = 0): Float32Array {
  return Float32Array.from(streamBits(n, seed, offset), toUniform);
}

/** Normals from the same uniforms, in f64 with Math.log/cos/sin: the reference the GPU series approximate. */
export function randomNormalCpu(n: number, seed: Seed, offset = 0): Float32Array {
  // Box-Muller pairs start at even stream indices: widen the range to whole pairs.
  const start = offset - (offset % 2),
    end = offset + n + ((offset + n) % 2);
  const u = Array.from(streamBits(end - start, seed, start), toUniform);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const k = offset + i - start,
      pair = k - (k % 2);
    const radius = Math.sqrt(-2 * Math.log(u[pair]!)),
      theta = 2 * Math.PI * u[pair + 1]!;
    out[i] = radius * (k % 2 === 0 ? Math.cos(theta) : Math.sin(theta));
  }
  return out;
}
