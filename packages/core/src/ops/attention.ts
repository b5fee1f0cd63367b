/** Fused scaled-dot-product attention (FlashAttention-style), with its gradient. */
import * as K from "@textcraftor/webgpu-kernels";
import { record } from "../tensor/autograd.ts";
import { runtime } from "../tensor/runtime.ts";
import { Tensor } from "../tensor/tensor.ts";
import { bmm } from "./matmul.ts";
import { softmax } from "./norm.ts";

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
}

/**
 * q [..., Lq, D], k [..., Lk, D], v [..., Lk, Dv] → [..., Lq, Dv], as torch's scaled_dot_product_attention.
 * The leading dims (batch·heads) must match; the Lq×Lk scores are never materialised.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions = {}): Tensor {
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
  const opts: K.AttentionOptions = { bh, lq, lk, d, dv, scale: o.scale, causal: o.causal };
  const out = Tensor.empty([...q.shape.slice(0, -1), dv]);
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
