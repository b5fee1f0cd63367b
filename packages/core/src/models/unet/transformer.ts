/**
 * diffusers' Transformer2DModel (continuous input) and its BasicTransformerBlock: the spatial transformer
 * through which the text conditioning enters the UNet.
 */
import { Conv2d, GroupNorm, LayerNorm, Linear } from "../../nn/layers.ts";
import type { Rng } from "../../nn/init.ts";
import { Module, ModuleList } from "../../nn/module.ts";
import { geglu } from "../../ops/elementwise.ts";
import { permute } from "../../ops/shape.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { Attention } from "../common/attention.ts";

/** Linear(dim → 2·inner) split into value and gate; value · GELU(gate). */
class GEGLU extends Module {
  readonly proj: Linear;
  constructor(dim: number, inner: number, rng: Rng) {
    super();
    this.proj = this.child("proj", new Linear(dim, 2 * inner, { rng }));
  }
  forward(x: Tensor): Tensor {
    return geglu(this.proj.forward(x));
  }
}

/** `net.0` (GEGLU) and `net.2` (Linear inner → dim); `net.1` is a parameterless Dropout (p = 0). */
class FeedForwardNet extends Module {
  readonly geglu: GEGLU;
  readonly out: Linear;
  constructor(dim: number, inner: number, rng: Rng) {
    super();
    this.geglu = this.child("0", new GEGLU(dim, inner, rng));
    this.out = this.child("2", new Linear(inner, dim, { rng }));
  }
}

export class FeedForward extends Module {
  readonly net: FeedForwardNet;
  constructor(dim: number, rng: Rng, mult = 4) {
    super();
    this.net = this.child("net", new FeedForwardNet(dim, dim * mult, rng));
  }
  /** (+ residual, fused into the output projection). */
  forward(x: Tensor, residual?: Tensor): Tensor {
    return this.net.out.forward(this.net.geglu.forward(x), "none", residual);
  }
}

/** Pre-LN: self-attention, cross-attention on the text states, GEGLU feed-forward; each with a residual. */
export class BasicTransformerBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn1: Attention;
  readonly norm2: LayerNorm;
  readonly attn2: Attention;
  readonly norm3: LayerNorm;
  readonly ff: FeedForward;

  constructor(dim: number, heads: number, crossAttentionDim: number, rng: Rng) {
    super();
    this.norm1 = this.child("norm1", new LayerNorm(dim));
    this.attn1 = this.child("attn1", new Attention(dim, { heads, rng }));
    this.norm2 = this.child("norm2", new LayerNorm(dim));
    this.attn2 = this.child("attn2", new Attention(dim, { heads, contextDim: crossAttentionDim, rng }));
    this.norm3 = this.child("norm3", new LayerNorm(dim));
    this.ff = this.child("ff", new FeedForward(dim, rng));
  }

  /** x [B, L, dim], encoderHiddenStates [B, Lc, crossAttentionDim]. */
  forward(x: Tensor, encoderHiddenStates: Tensor): Tensor {
    // Each residual is added in the epilogue of the sublayer's output projection.
    let h = this.attn1.forward(this.norm1.forward(x), undefined, x);
    h = this.attn2.forward(this.norm2.forward(h), encoderHiddenStates, h);
    return this.ff.forward(this.norm3.forward(h), h);
  }
}

export interface TransformerOptions {
  heads: number;
  layers: number;
  crossAttentionDim: number;
  groups: number;
  useLinearProjection: boolean;
  rng: Rng;
}

export class Transformer2DModel extends Module {
  readonly norm: GroupNorm;
  /** 1×1 convs on [B, C, H, W] (SD 1.x) or Linears on the token sequence (SD 2.x, use_linear_projection). */
  readonly projIn: Conv2d | Linear;
  readonly transformerBlocks: ModuleList<BasicTransformerBlock>;
  readonly projOut: Conv2d | Linear;
  private readonly linear: boolean;

  constructor(
    channels: number,
    { heads, layers, crossAttentionDim, groups, useLinearProjection, rng }: TransformerOptions,
  ) {
    super();
    this.linear = useLinearProjection;
    const projection = () =>
      useLinearProjection ? new Linear(channels, channels, { rng }) : new Conv2d(channels, channels, 1, { rng });
    // diffusers fixes this GroupNorm's eps at 1e-6, whatever the config's norm_eps.
    this.norm = this.child("norm", new GroupNorm(groups, channels, 1e-6));
    this.projIn = this.child("proj_in", projection());
    this.transformerBlocks = this.child(
      "transformer_blocks",
      new ModuleList(
        Array.from({ length: layers }, () => new BasicTransformerBlock(channels, heads, crossAttentionDim, rng)),
      ),
    );
    this.projOut = this.child("proj_out", projection());
  }

  /** x [B, C, H, W] → same shape, x plus the transformer's output. */
  forward(x: Tensor, encoderHiddenStates: Tensor): Tensor {
    const [batch, channels, height, width] = x.shape as [number, number, number, number];
    let h = this.norm.forward(x);
    if (!this.linear) h = this.projIn.forward(h);
    h = permute(h, [0, 2, 3, 1]).reshape([batch, height * width, channels]);
    if (this.linear) h = this.projIn.forward(h);
    for (const block of this.transformerBlocks) h = block.forward(h, encoderHiddenStates);
    if (this.linear) h = this.projOut.forward(h);
    h = permute(h.reshape([batch, height, width, channels]), [0, 3, 1, 2]);
    return this.projOut instanceof Conv2d ? this.projOut.forward(h, x) : h.add(x);
  }
}
