/**
 * Index arithmetic of the kernels that address tensors through strides (broadcasting binary ops, the strided
 * copy). A shape travels as the uniforms `d0 … d5` and each operand's strides as `<prefix>0 … <prefix>5`: the
 * `Params` block is the same for every rank, so only the rank is baked into the WGSL (it sits in the kernel's
 * spec) and a kernel unravels just the dimensions it has; the unused trailing uniforms are 0.
 */

export const MAX_RANK = 6;

type Axis = 0 | 1 | 2 | 3 | 4 | 5;
const AXES = [0, 1, 2, 3, 4, 5] as const satisfies readonly Axis[];

/** The uniform declarations `<prefix>0 … <prefix>5`, one u32 per axis. */
export function rankUniforms<P extends string>(prefix: P): Record<`${P}${Axis}`, "u32"> {
  return Object.fromEntries(AXES.map((a) => [`${prefix}${a}`, "u32"])) as Record<`${P}${Axis}`, "u32">;
}

/** Uniform values `<prefix>k = values[k]`, zero past the last of the (at most MAX_RANK) values. */
export function rankValues<P extends string>(prefix: P, values: readonly number[]): Record<`${P}${Axis}`, number> {
  if (values.length > MAX_RANK) throw new Error(`${values.length} axes given where at most ${MAX_RANK} fit`);
  return Object.fromEntries(AXES.map((a) => [`${prefix}${a}`, values[a] ?? 0])) as Record<`${P}${Axis}`, number>;
}

/** WGSL that splits the row-major linear index `i` over the shape `p.d*` into coordinates `c0 … c<rank−1>`. */
export function unravelWgsl(rank: number): string {
  const lines = Array.from({ length: rank }, (_, k) => rank - 1 - k).map(
    (d) => `let c${d} = rest % p.d${d}; rest = rest / p.d${d};`,
  );
  return ["var rest = i;", ...lines].join("\n        ");
}

/** The WGSL expression Σ cₖ·p.<prefix>k over the first `rank` axes. */
export function stridedOffsetWgsl(rank: number, prefix: string): string {
  return Array.from({ length: rank }, (_, k) => `c${k} * p.${prefix}${k}`).join(" + ");
}
