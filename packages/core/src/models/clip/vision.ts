/**
 * transformers' CLIPVisionModel and CLIPVisionModelWithProjection: the image tower of the CLIP-based
 * rewards. Differentiable with respect to the pixels, since reward gradients flow back into the images.
 */
import { Conv2d, Embedding, LayerNorm, Linear, Module, Rng, type TensorData } from "../../nn/index.ts";
import { concat, linear, permute, slice, transpose } from "../../ops/index.ts";
import { Tensor } from "../../tensor/index.ts";
import type { CLIPVisionConfig } from "./config.ts";
import { CLIPEncoder, type CLIPModelOptions } from "./encoder.ts";
import { loadCLIPWeights } from "./weights.ts";

class CLIPVisionEmbeddings extends Module {
  readonly classEmbedding: Tensor;
  readonly patchEmbedding: Conv2d;
  readonly positionEmbedding: Embedding;
  constructor(
    readonly config: CLIPVisionConfig,
    rng: Rng,
  ) {
    super();
    const { hiddenSize, patchSize, imageSize } = config;
    this.classEmbedding = this.param(
      "class_embedding",
      Tensor.from(rng.normal(hiddenSize, hiddenSize ** -0.5), [hiddenSize]),
    );
    this.patchEmbedding = this.child(
      "patch_embedding",
      new Conv2d(config.numChannels, hiddenSize, patchSize, { stride: patchSize, bias: false, rng }),
    );
    this.positionEmbedding = this.child(
      "position_embedding",
      new Embedding((imageSize / patchSize) ** 2 + 1, hiddenSize, { rng }),
    );
  }

  /** pixels [B, C, H, W] → [class token, patch tokens...] + positions, [B, 1 + patches, hidden]. */
  forward(pixels: Tensor): Tensor {
    const { numChannels, imageSize, hiddenSize } = this.config;
    const [batch, channels, height, width] = pixels.shape as [number, number, number, number];
    if (pixels.ndim !== 4 || channels !== numChannels || height !== imageSize || width !== imageSize) {
      throw new Error(
        `CLIPVisionModel: expected pixels [B, ${numChannels}, ${imageSize}, ${imageSize}], got [${pixels.shape}]; resize or pool the images to ${imageSize}×${imageSize} first (adaptiveAvgPool2d)`,
      );
    }
    const patches = this.embedPatches(pixels);
    // Broadcasting against zeros repeats the class token per image and sums its gradient back over them.
    const cls = Tensor.zeros([batch, 1, hiddenSize]).add(this.classEmbedding);
    return concat([cls, patches], 1).add(this.positionEmbedding.weight);
  }

  /**
   * The stride-p p×p patch convolution as a matmul over non-overlapping patches: rows [B·P, C·p·p] times the
   * kernel viewed as [hidden, C·p·p], giving [B, P, hidden] directly. Its input gradient is then a matmul too;
   * the implicit-GEMM conv gradient walks all p² taps of every pixel to find the one that applies (196× the
   * work for ViT-L/14, seconds per backward on a CPU adapter).
   */
  private embedPatches(pixels: Tensor): Tensor {
    const { patchSize: p, imageSize, hiddenSize } = this.config;
    const [batch, channels] = pixels.shape as [number, number];
    if (imageSize % p) {
      const map = this.patchEmbedding.forward(pixels);
      return transpose(map.reshape([batch, hiddenSize, -1]), 1, 2);
    }
    const side = imageSize / p;
    const rows = permute(pixels.reshape([batch, channels, side, p, side, p]), [0, 2, 4, 1, 3, 5]);
    const kernel = this.patchEmbedding.weight.reshape([hiddenSize, channels * p * p]);
    return linear(rows.reshape([batch, side * side, channels * p * p]), kernel);
  }
}

class CLIPVisionTransformer extends Module {
  readonly embeddings: CLIPVisionEmbeddings;
  readonly preLayrnorm: LayerNorm;
  readonly encoder: CLIPEncoder;
  readonly postLayernorm: LayerNorm;
  constructor(config: CLIPVisionConfig, rng: Rng) {
    super();
    this.embeddings = this.child("embeddings", new CLIPVisionEmbeddings(config, rng));
    this.preLayrnorm = this.child("pre_layrnorm", new LayerNorm(config.hiddenSize, config.layerNormEps)); // HF's spelling
    this.encoder = this.child("encoder", new CLIPEncoder(config, rng));
    this.postLayernorm = this.child("post_layernorm", new LayerNorm(config.hiddenSize, config.layerNormEps));
  }
  forward(pixels: Tensor): CLIPVisionOutput {
    const lastHidden = this.encoder.forward(this.preLayrnorm.forward(this.embeddings.forward(pixels)), false);
    const [batch, length, width] = lastHidden.shape as [number, number, number];
    const cls = slice(lastHidden.reshape([batch, length * width]), 1, 0, width);
    return { lastHidden, pooled: this.postLayernorm.forward(cls) };
  }
}

export interface CLIPVisionOutput {
  /** Encoder output [B, 1 + patches, hidden] (before post_layernorm, as transformers' last_hidden_state). */
  lastHidden: Tensor;
  /** post_layernorm of the class token, [B, hidden]. */
  pooled: Tensor;
}

export class CLIPVisionModel extends Module {
  readonly visionModel: CLIPVisionTransformer;
  constructor(
    readonly config: CLIPVisionConfig,
    { rng = new Rng(0), useCheckpoint = false }: CLIPModelOptions = {},
  ) {
    super();
    this.visionModel = this.child("vision_model", new CLIPVisionTransformer(config, rng));
    this.useCheckpoint = useCheckpoint;
  }

  get useCheckpoint(): boolean {
    return this.visionModel.encoder.useCheckpoint;
  }
  set useCheckpoint(on: boolean) {
    this.visionModel.encoder.useCheckpoint = on;
  }

  /** pixels [B, C, image_size, image_size], already normalised with CLIP's mean and std. */
  forward(pixels: Tensor): CLIPVisionOutput {
    return this.visionModel.forward(pixels);
  }

  /** Loads `vision_model.*` (and `visual_projection.*` for the projection model) from HF-named tensors. */
  loadWeights(tensors: ReadonlyMap<string, TensorData>): void {
    loadCLIPWeights(this, tensors);
  }
}

/** The image tower with `visual_projection` (no bias): image embeddings in CLIP's joint space. */
export class CLIPVisionModelWithProjection extends CLIPVisionModel {
  readonly visualProjection: Linear;
  constructor(config: CLIPVisionConfig, options: CLIPModelOptions = {}) {
    const rng = options.rng ?? new Rng(0);
    super(config, { ...options, rng });
    this.visualProjection = this.child(
      "visual_projection",
      new Linear(config.hiddenSize, config.projectionDim, { bias: false, rng }),
    );
  }

  /** image_embeds [B, projection_dim] (not normalised) = visual_projection(post_layernorm(class token)). */
  imageEmbeds(pixels: Tensor): Tensor {
    return this.visualProjection.forward(this.forward(pixels).pooled);
  }
}
