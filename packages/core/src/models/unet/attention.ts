/** diffusers' Attention as the SD transformer blocks use it: multi-head, q/k/v without bias, to_out.0 with bias. */
import { Linear } from "../../nn/layers.ts";
import type { Rng } from "../../nn/init.ts";
import { Module, ModuleList } from "../../nn/module.ts";
import { scaledDotProductAttention } from "../../ops/attention.ts";
import { permute } from "../../ops/shape.ts";
import type { Tensor } from "../../tensor/tensor.ts";

export class Attention extends Module {
  readonly toQ: Linear;
  readonly toK: Linear;
  readonly toV: Linear;
  /** `to_out.1` is a parameterless Dropout (p = 0), so the list holds only the Linear. */
  readonly toOut: ModuleList<Linear>;

  /** `contextDim` is the keys' and values' source width: queryDim for self-attention, cross_attention_dim for cross. */
  constructor(queryDim: number, contextDim: number, readonly heads: number, rng: Rng) {
    super();
    this.toQ = this.child("to_q", new Linear(queryDim, queryDim, { bias: false, rng }));
    this.toK = this.child("to_k", new Linear(contextDim, queryDim, { bias: false, rng }));
    this.toV = this.child("to_v", new Linear(contextDim, queryDim, { bias: false, rng }));
    this.toOut = this.child("to_out", new ModuleList([new Linear(queryDim, queryDim, { rng })]));
  }

  /** x [B, L, C]; context [B, Lc, contextDim] for cross-attention, omitted for self-attention. */
  forward(x: Tensor, context: Tensor = x): Tensor {
    const [batch, length, channels] = x.shape as [number, number, number];
    // [B, L, heads·d] → [B, heads, L, d], the layout the fused attention kernel takes.
    const splitHeads = (t: Tensor) => permute(t.reshape([batch, t.shape[1]!, this.heads, channels / this.heads]), [0, 2, 1, 3]);
    const q = splitHeads(this.toQ.forward(x)), k = splitHeads(this.toK.forward(context)), v = splitHeads(this.toV.forward(context));
    const merged = permute(scaledDotProductAttention(q, k, v), [0, 2, 1, 3]).reshape([batch, length, channels]);
    return this.toOut.at(0).forward(merged);
  }
}
