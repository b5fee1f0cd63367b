/**
 * Where the attention kernels find a head's rows. Element (b, h, l, j) of q, k, v, out (and their gradients, laid
 * out as they are) lives at b·batch + h·head + l·token + j floats, with b = bh / heads and h = bh mod heads. The
 * strides travel as uniforms, so one pipeline serves every layout; lse and delta stay [B·H, L].
 *
 * Two layouts are named: "headsMajor", [B·H, L, n] contiguous (heads split off next to batch, as torch's SDPA
 * takes them), and "tokensMajor", [B, L, H·n] as a Linear layer writes its projection, which saves the four
 * head split/merge copies around every attention call (and their four in backward).
 */
export type AttentionLayout = "headsMajor" | "tokensMajor";

/** Strides in floats of one tensor's (batch, head, token) dims. */
export interface HeadStrides {
  batch: number;
  head: number;
  token: number;
}

/** The strides of a tensor of `length` rows of `n` floats per head in `layout`. */
export function headStrides(layout: AttentionLayout, heads: number, length: number, n: number): HeadStrides {
  return layout === "headsMajor"
    ? { batch: heads * length * n, head: length * n, token: n }
    : { batch: length * heads * n, head: n, token: heads * n };
}

/** The four tensors with their own strides: gradQ shares q's, gradK k's, gradV v's, gradOut out's ("o"). */
const TENSORS = ["q", "k", "v", "o"] as const;

/** The layout's uniforms, appended to each attention kernel's own. */
export const LAYOUT_UNIFORMS = {
  heads: "u32",
  qBatch: "u32",
  qHead: "u32",
  qToken: "u32",
  kBatch: "u32",
  kHead: "u32",
  kToken: "u32",
  vBatch: "u32",
  vHead: "u32",
  vToken: "u32",
  oBatch: "u32",
  oHead: "u32",
  oToken: "u32",
} as const;

/** WGSL `qRow(bh, l)`, `kRow`, `vRow`, `oRow`: the float offset where row l of head bh starts. */
export const ROW_STARTS = TENSORS.map(
  (t) => `
  fn ${t}Row(bh: u32, l: u32) -> u32 { return bh / p.heads * p.${t}Batch + bh % p.heads * p.${t}Head + l * p.${t}Token; }`,
).join("");

export interface LayoutShape {
  bh: number;
  lq: number;
  lk: number;
  d: number;
  dv: number;
  /** Splits bh into (batch, head); defaults to 1 (any split addresses "headsMajor" the same way). */
  heads?: number;
  /** Defaults to "headsMajor". */
  layout?: AttentionLayout;
}

export type LayoutUniforms = Record<keyof typeof LAYOUT_UNIFORMS, number>;

/** The layout uniforms' values for a call, after checking that heads divides bh. */
export function layoutUniforms(o: LayoutShape): LayoutUniforms {
  const heads = o.heads ?? 1,
    layout = o.layout ?? "headsMajor";
  if (!Number.isInteger(heads) || heads < 1 || o.bh % heads)
    throw new Error(`attention: heads=${heads} must be a positive integer dividing bh=${o.bh} (batch·heads)`);
  if (layout !== "headsMajor" && layout !== "tokensMajor")
    throw new Error(`attention: layout "${layout}" is neither "headsMajor" nor "tokensMajor"`);
  const q = headStrides(layout, heads, o.lq, o.d),
    k = headStrides(layout, heads, o.lk, o.d),
    v = headStrides(layout, heads, o.lk, o.dv),
    out = headStrides(layout, heads, o.lq, o.dv);
  // Every stride is a multiple of its tensor's n, so the vec4 loads of n % 4 = 0 rows stay aligned.
  return {
    heads,
    qBatch: q.batch,
    qHead: q.head,
    qToken: q.token,
    kBatch: k.batch,
    kHead: k.head,
    kToken: k.token,
    vBatch: v.batch,
    vHead: v.head,
    vToken: v.token,
    oBatch: out.batch,
    oHead: out.head,
    oToken: out.token,
  };
}
