/** The nn building blocks, with PyTorch's parameter names and layouts so checkpoints load by name. */
import type { MatmulActivation } from "@textcraftor/webgpu-kernels";
import { conv2d, type Conv2dParams } from "../ops/conv.ts";
import { embedding } from "../ops/embedding.ts";
import { gelu, quickGelu, relu, silu } from "../ops/elementwise.ts";
import { linear } from "../ops/matmul.ts";
import { groupNorm, layerNorm } from "../ops/norm.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { Rng, onesInit, uniformInit, zerosInit } from "./init.ts";
import { Module } from "./module.ts";

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    { bias = true, rng = new Rng(0) } = {},
  ) {
    super();
    this.weight = this.param("weight", uniformInit(rng, [outFeatures, inFeatures], inFeatures));
    this.bias = bias ? this.param("bias", uniformInit(rng, [outFeatures], inFeatures)) : null;
  }
  /** A low-rank adapter added to this layer's output (see lora.ts), or null. */
  adapter: { down: Linear; up: Linear; scale: number } | null = null;

  /** act(x·wᵀ + b) (+ residual, added after the activation in the GEMM's epilogue). */
  forward(x: Tensor, activation: MatmulActivation = "none", residual?: Tensor): Tensor {
    if (!this.adapter) return linear(x, this.weight, this.bias, activation, residual);
    const { down, up, scale } = this.adapter;
    const y = linear(x, this.weight, this.bias).add(up.forward(down.forward(x)).mul(scale));
    const activated = activation === "none" ? y : ACTIVATIONS[activation](y);
    return residual ? activated.add(residual) : activated;
  }
}

const ACTIVATIONS = { silu, gelu, quickGelu, relu } as const;

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number,
    readonly options: Conv2dParams & { bias?: boolean; rng?: Rng } = {},
  ) {
    super();
    const rng = options.rng ?? new Rng(0),
      fanIn = inChannels * kernelSize * kernelSize;
    this.weight = this.param("weight", uniformInit(rng, [outChannels, inChannels, kernelSize, kernelSize], fanIn));
    this.bias = options.bias === false ? null : this.param("bias", uniformInit(rng, [outChannels], fanIn));
  }
  /** The convolution (+ residual, added in the kernel's epilogue). */
  forward(x: Tensor, residual?: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, this.options, residual);
  }
}

export class GroupNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(
    readonly numGroups: number,
    numChannels: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = this.param("weight", onesInit([numChannels]));
    this.bias = this.param("bias", zerosInit([numChannels]));
  }
  /** `silu: true` fuses the SiLU that follows (GroupNorm → SiLU in resnet blocks). */
  forward(x: Tensor, silu = false): Tensor {
    return groupNorm(x, this.numGroups, this.weight, this.bias, this.eps, { silu });
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(
    dim: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = this.param("weight", onesInit([dim]));
    this.bias = this.param("bias", zerosInit([dim]));
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(
    readonly numEmbeddings: number,
    readonly dim: number,
    { rng = new Rng(0) } = {},
  ) {
    super();
    this.weight = this.param("weight", uniformInit(rng, [numEmbeddings, dim], 3)); // ≈ N(0,1) scale, as nn.Embedding
  }
  forward(ids: ArrayLike<number>, idShape?: readonly number[]): Tensor {
    return embedding(this.weight, ids, idShape);
  }
}
