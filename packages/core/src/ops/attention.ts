/** Fused scaled-dot-product attention (FlashAttention-style), with its gradient. */
import * as K from "@textcraftor/webgpu-kernels";
import { record } from "../tensor/autograd.ts";
import { runtime } from "../tensor/runtime.ts";
import { Tensor } from "../tensor/tensor.ts";
import { bmm } from "./matmul.ts";
import { softmax } from "./norm.ts";
import { permute } from "./shape.ts";

/** The fused kernels keep a head's accumulators per thread; wider heads (the VAE's single 512-wide head) go unfused. */
const MAX_FUSED_HEAD_DIM = 160;

/**
 * softmax(scale·q·kᵀ)·v with the scores materialised: [bh, Lq, Lk] floats (64 MiB for the VAE's 4096 tokens),
 * fine for the one attention layer that needs it. Causal masking is only used by CLIP, whose heads are fused.
 */
function unfusedAttention(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions): Tensor {
  if (o.causal)
    throw new Error("scaledDotProductAttention: causal attention with head dims above 160 is not supported");
  const scale = o.scale ?? 1 / Math.sqrt(q.shape[2]!);
  return bmm(softmax(bmm(q, k, { transB: true, alpha: scale })), v);
}

export interface AttentionOptions {
  causal?: boolean;
  scale?: number;
  /**
   * Multi-head attention on tokens-major tensors, as the q/k/v projections write them: q [B, Lq, heads·D],
   * k [B, Lk, heads·D], v [B, Lk, heads·Dv] → [B, Lq, heads·Dv]. The kernels read each head in place, so no
   * head split or merge is copied (nor its gradient).
   */
  heads?: number;
}

/**
 * q [..., Lq, D], k [..., Lk, D], v [..., Lk, Dv] → [..., Lq, Dv], as torch's scaled_dot_product_attention.
 * The leading dims (batch·heads) must match; the Lq×Lk scores are never materialised. With `heads`, the
 * tensors are [B, L, heads·D] instead (see AttentionOptions.heads).
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions = {}): Tensor {
  if (o.heads !== undefined) return multiHeadAttention(q, k, v, o.heads, o);
  const lq = q.shape[q.ndim - 2]!,
    d = q.shape[q.ndim - 1]!;
  const lk = k.shape[k.ndim - 2]!,
    dv = v.shape[v.ndim - 1]!;
  const bh = q.size / (lq * d);
  if (k.size !== bh * lk * d || v.size !== bh * lk * dv)
    throw new Error(`scaledDotProductAttention: q [${q.shape}], k [${k.shape}], v [${v.shape}] do not agree`);
  if (d > MAX_FUSED_HEAD_DIM || dv > MAX_FUSED_HEAD_DIM)
    return unfusedAttention(q.reshape([bh, lq, d]), k.reshape([bh, lk, d]), v.reshape([bh, lk, dv]), o).reshape([
      ...q.shape.slice(0, -1),
      dv,
    ]);
  return fusedAttention(q, k, v, { bh, lq, lk, d, dv, scale: o.scale, causal: o.causal }, [
    ...q.shape.slice(0, -1),
    dv,
  ]);
}

/** q [B, Lq, heads·D], k [B, Lk, heads·D], v [B, Lk, heads·Dv] → [B, Lq, heads·Dv]. */
function multiHeadAttention(q: Tensor, k: Tensor, v: Tensor, heads: number, o: AttentionOptions): Tensor {
  const shapes = `q [${q.shape}], k [${k.shape}], v [${v.shape}]`;
  if (q.ndim !== 3 || k.ndim !== 3 || v.ndim !== 3)
    throw new Error(
      `scaledDotProductAttention: with heads, q, k and v are [batch, tokens, heads·head_dim] (got ${shapes})`,
    );
  const [batch, lq, width] = q.shape as [number, number, number];
  const [, lk] = k.shape as [number, number, number];
  const valueWidth = v.shape[2]!;
  if (!Number.isInteger(heads) || heads < 1 || width % heads || valueWidth % heads)
    throw new Error(
      `scaledDotProductAttention: heads=${heads} must be a positive integer dividing q's and v's widths (${shapes})`,
    );
  if (k.shape[0] !== batch || v.shape[0] !== batch || k.shape[2] !== width || v.shape[1] !== lk)
    throw new Error(`scaledDotProductAttention: ${shapes} do not agree (batch, key tokens and q/k width must match)`);
  const d = width / heads,
    dv = valueWidth / heads;
  if (d > MAX_FUSED_HEAD_DIM || dv > MAX_FUSED_HEAD_DIM) {
    // Wide heads go unfused on [B·heads, L, D] copies; one head (the VAE's) is that layout already.
    const split = (t: Tensor, n: number) =>
      heads === 1 ? t : permute(t.reshape([batch, t.shape[1]!, heads, n]), [0, 2, 1, 3]);
    const out = scaledDotProductAttention(split(q, d), split(k, d), split(v, dv), { ...o, heads: undefined });
    return heads === 1 ? out : permute(out, [0, 2, 1, 3]).reshape([batch, lq, valueWidth]);
  }
  const shape = { bh: batch * heads, lq, lk, d, dv, heads, layout: "tokensMajor" } as const;
  return fusedAttention(q, k, v, { ...shape, scale: o.scale, causal: o.causal }, [batch, lq, valueWidth]);
}

/** The fused kernels on q, k, v laid out as `opts` says; out has `outShape` and the gradients their inputs' shapes. */
function fusedAttention(q: Tensor, k: Tensor, v: Tensor, opts: K.AttentionOptions, outShape: number[]): Tensor {
  const { bh, lq } = opts;
  const out = Tensor.empty(outShape);
  const lse = Tensor.empty([bh, lq]);
  const r = runtime().runner;
  K.attention(r, q.buffer, k.buffer, v.buffer, out.buffer, lse.buffer, opts);
  return record(
    out,
    "attention",
    [q, k, v],
    (g) => {
      const gq = Tensor.empty(q.shape),
        gk = Tensor.empty(k.shape),
        gv = Tensor.empty(v.shape),
        delta = Tensor.empty([bh, lq]);
      K.attentionBackward(
        r,
        q.buffer,
        k.buffer,
        v.buffer,
        out.buffer,
        g.buffer,
        lse.buffer,
        gq.buffer,
        gk.buffer,
        gv.buffer,
        { ...opts, delta: delta.buffer },
      );
      return [gq, gk, gv];
    },
    [lse],
  );
}
