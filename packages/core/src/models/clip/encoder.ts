/**
 * The transformer both CLIP towers share (transformers' CLIPEncoder): pre-LN blocks of multi-head
 * self-attention and a two-layer MLP, with HF's parameter names. The text tower runs it causally.
 */
import type { MatmulActivation } from "@textcraftor/webgpu-kernels";
import { LayerNorm, Linear, Module, ModuleList, type Rng } from "../../nn/index.ts";
import { scaledDotProductAttention } from "../../ops/index.ts";
import { checkpoint, type Tensor } from "../../tensor/index.ts";
import type { CLIPActivation, CLIPEncoderConfig } from "./config.ts";

export interface CLIPModelOptions {
  /** Seeds the initial weights (they matter only for models trained from scratch, such as the bundled tiny one). */
  rng?: Rng;
  /** Recompute each encoder layer during backward rather than keeping its activations. */
  useCheckpoint?: boolean;
}

const ACTIVATION: Record<CLIPActivation, MatmulActivation> = { quick_gelu: "quickGelu", gelu: "gelu" };

export class CLIPAttention extends Module {
  readonly qProj: Linear;
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly outProj: Linear;
  constructor(
    readonly hiddenSize: number,
    readonly numHeads: number,
    rng: Rng,
  ) {
    super();
    this.qProj = this.child("q_proj", new Linear(hiddenSize, hiddenSize, { rng }));
    this.kProj = this.child("k_proj", new Linear(hiddenSize, hiddenSize, { rng }));
    this.vProj = this.child("v_proj", new Linear(hiddenSize, hiddenSize, { rng }));
    this.outProj = this.child("out_proj", new Linear(hiddenSize, hiddenSize, { rng }));
  }

  /** x [B, L, hidden] → [B, L, hidden] (+ residual, fused into out_proj); scores scaled by head_dim^-0.5. */
  forward(x: Tensor, causal: boolean, residual?: Tensor): Tensor {
    const headDim = this.hiddenSize / this.numHeads;
    // [B, L, heads·head_dim] in and out: the attention kernels read each head in place.
    const out = scaledDotProductAttention(this.qProj.forward(x), this.kProj.forward(x), this.vProj.forward(x), {
      heads: this.numHeads,
      causal,
      scale: headDim ** -0.5,
    });
    return this.outProj.forward(out, "none", residual);
  }
}

export class CLIPMLP extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(
    hiddenSize: number,
    intermediateSize: number,
    readonly activation: CLIPActivation,
    rng: Rng,
  ) {
    super();
    this.fc1 = this.child("fc1", new Linear(hiddenSize, intermediateSize, { rng }));
    this.fc2 = this.child("fc2", new Linear(intermediateSize, hiddenSize, { rng }));
  }
  /** fc2(act(fc1(x))) (+ residual, fused into fc2). */
  forward(x: Tensor, residual?: Tensor): Tensor {
    return this.fc2.forward(this.fc1.forward(x, ACTIVATION[this.activation]), "none", residual);
  }
}

export class CLIPEncoderLayer extends Module {
  readonly selfAttn: CLIPAttention;
  readonly layerNorm1: LayerNorm;
  readonly mlp: CLIPMLP;
  readonly layerNorm2: LayerNorm;
  constructor(config: CLIPEncoderConfig, rng: Rng) {
    super();
    this.selfAttn = this.child("self_attn", new CLIPAttention(config.hiddenSize, config.numAttentionHeads, rng));
    this.layerNorm1 = this.child("layer_norm1", new LayerNorm(config.hiddenSize, config.layerNormEps));
    this.mlp = this.child("mlp", new CLIPMLP(config.hiddenSize, config.intermediateSize, config.hiddenAct, rng));
    this.layerNorm2 = this.child("layer_norm2", new LayerNorm(config.hiddenSize, config.layerNormEps));
  }
  forward(x: Tensor, causal: boolean): Tensor {
    const h = this.selfAttn.forward(this.layerNorm1.forward(x), causal, x);
    return this.mlp.forward(this.layerNorm2.forward(h), h);
  }
}

export class CLIPEncoder extends Module {
  readonly layers: ModuleList<CLIPEncoderLayer>;
  /** Recompute each layer in backward instead of keeping its activations (core's `checkpoint`). */
  useCheckpoint = false;
  constructor(config: CLIPEncoderConfig, rng: Rng) {
    super();
    this.layers = this.child(
      "layers",
      new ModuleList(Array.from({ length: config.numHiddenLayers }, () => new CLIPEncoderLayer(config, rng))),
    );
  }
  forward(x: Tensor, causal: boolean): Tensor {
    for (const layer of this.layers) {
      x = this.useCheckpoint ? checkpoint((h) => layer.forward(h, causal), x) : layer.forward(x, causal);
    }
    return x;
  }
}
