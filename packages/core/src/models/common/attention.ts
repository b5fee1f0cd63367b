/**
 * diffusers' Attention, shared by the UNet's transformer blocks (multi-head, cross-attention, q/k/v without bias)
 * and the VAE's mid block (one head over the H·W pixels, its own group norm, q/k/v with bias, a residual).
 */
import { GroupNorm, Linear } from "../../nn/layers.ts";
import type { Rng } from "../../nn/init.ts";
import { Module, ModuleList } from "../../nn/module.ts";
import { scaledDotProductAttention } from "../../ops/attention.ts";
import { transpose } from "../../ops/shape.ts";
import { scope } from "../../tensor/scope.ts";
import type { Tensor } from "../../tensor/tensor.ts";

export interface AttentionOptions {
  heads: number;
  /** The keys' and values' source width (cross_attention_dim); omitted, queryDim (self-attention). */
  contextDim?: number;
  /** q/k/v projections with bias (diffusers' `bias`; the VAE's have one, the UNet's not). */
  bias?: boolean;
  /** A GroupNorm applied to the input first (`group_norm`, the VAE's). */
  norm?: { groups: number; eps: number };
  /** Adds the input to the output (diffusers' residual_connection). */
  residualConnection?: boolean;
  rng: Rng;
}

export class Attention extends Module {
  readonly groupNorm: GroupNorm | null;
  readonly toQ: Linear;
  readonly toK: Linear;
  readonly toV: Linear;
  /** `to_out.1` is a parameterless Dropout (p = 0), so the list holds only the Linear. */
  readonly toOut: ModuleList<Linear>;
  readonly heads: number;
  private readonly residualConnection: boolean;

  constructor(
    queryDim: number,
    { heads, contextDim = queryDim, bias = false, norm, residualConnection = false, rng }: AttentionOptions,
  ) {
    super();
    this.heads = heads;
    this.residualConnection = residualConnection;
    this.groupNorm = norm ? this.child("group_norm", new GroupNorm(norm.groups, queryDim, norm.eps)) : null;
    this.toQ = this.child("to_q", new Linear(queryDim, queryDim, { bias, rng }));
    this.toK = this.child("to_k", new Linear(contextDim, queryDim, { bias, rng }));
    this.toV = this.child("to_v", new Linear(contextDim, queryDim, { bias, rng }));
    this.toOut = this.child("to_out", new ModuleList([new Linear(queryDim, queryDim, { rng })]));
  }

  /**
   * x [B, L, C], or a feature map [B, C, H, W] attended over its H·W pixels and returned in that shape;
   * context [B, Lc, contextDim] for cross-attention, omitted for self-attention. `residual` ([B, L, C] input
   * only) is added in to_out's epilogue.
   */
  forward(x: Tensor, context?: Tensor, residual?: Tensor): Tensor {
    return scope(() => {
      const spatial = x.ndim === 4;
      const normed = this.groupNorm ? this.groupNorm.forward(x) : x;
      const [batch, channels] = normed.shape as [number, number];
      const tokens = spatial ? transpose(normed.reshape([batch, channels, -1]), 1, 2) : normed;
      const source = context ?? tokens;
      // q, k, v stay [B, L, heads·d]: the attention kernels read each head in place.
      const [q, k, v] = [this.toQ.forward(tokens), this.toK.forward(source), this.toV.forward(source)];
      const attended = scaledDotProductAttention(q, k, v, { heads: this.heads });
      if (residual && spatial) throw new Error("Attention: a residual is fused only for [B, L, C] inputs");
      const out = this.toOut.at(0).forward(attended, "none", residual);
      const shaped = spatial ? transpose(out, 1, 2).reshape(x.shape) : out;
      return this.residualConnection ? x.add(shaped) : shaped;
    });
  }
}
