/**
 * transformers' CLIPTextModel (SD 1.x's text encoder) and CLIPTextModelWithProjection (the text tower of
 * the CLIP-based rewards). Parameter names match the HF checkpoints: `text_model.embeddings.token_embedding.weight`, ...
 */
import { Embedding, LayerNorm, Linear, Module, Rng, type TensorData } from "../../nn/index.ts";
import { embedding, slice } from "../../ops/index.ts";
import type { Tensor } from "../../tensor/index.ts";
import type { CLIPTextConfig } from "./config.ts";
import { CLIPEncoder, type CLIPModelOptions } from "./encoder.ts";
import { loadCLIPWeights } from "./weights.ts";

class CLIPTextEmbeddings extends Module {
  readonly tokenEmbedding: Embedding;
  readonly positionEmbedding: Embedding;
  constructor(config: CLIPTextConfig, rng: Rng) {
    super();
    this.tokenEmbedding = this.child("token_embedding", new Embedding(config.vocabSize, config.hiddenSize, { rng }));
    this.positionEmbedding = this.child(
      "position_embedding",
      new Embedding(config.maxPositionEmbeddings, config.hiddenSize, { rng }),
    );
  }
  forward(inputIds: ArrayLike<number>, batch: number, seqLen: number): Tensor {
    const positions = this.positionEmbedding.weight;
    const used = seqLen === positions.shape[0] ? positions : slice(positions, 0, 0, seqLen);
    return this.tokenEmbedding.forward(inputIds, [batch, seqLen]).add(used);
  }
}

class CLIPTextTransformer extends Module {
  readonly embeddings: CLIPTextEmbeddings;
  readonly encoder: CLIPEncoder;
  readonly finalLayerNorm: LayerNorm;
  constructor(config: CLIPTextConfig, rng: Rng) {
    super();
    this.embeddings = this.child("embeddings", new CLIPTextEmbeddings(config, rng));
    this.encoder = this.child("encoder", new CLIPEncoder(config, rng));
    this.finalLayerNorm = this.child("final_layer_norm", new LayerNorm(config.hiddenSize, config.layerNormEps));
  }
  forward(inputIds: ArrayLike<number>, batch: number, seqLen: number): Tensor {
    return this.finalLayerNorm.forward(this.encoder.forward(this.embeddings.forward(inputIds, batch, seqLen), true));
  }
}

export class CLIPTextModel extends Module {
  readonly textModel: CLIPTextTransformer;
  constructor(
    readonly config: CLIPTextConfig,
    { rng = new Rng(0), useCheckpoint = false }: CLIPModelOptions = {},
  ) {
    super();
    this.textModel = this.child("text_model", new CLIPTextTransformer(config, rng));
    this.useCheckpoint = useCheckpoint;
  }

  get useCheckpoint(): boolean {
    return this.textModel.encoder.useCheckpoint;
  }
  set useCheckpoint(on: boolean) {
    this.textModel.encoder.useCheckpoint = on;
  }

  /**
   * Token ids, row-major [B, seqLen] (77 for SD) → last_hidden_state [B, seqLen, hidden]: final_layer_norm
   * is applied to every position, which is what SD feeds the UNet as encoder_hidden_states.
   */
  forward(inputIds: ArrayLike<number>, seqLen = this.config.maxPositionEmbeddings): Tensor {
    return this.textModel.forward(inputIds, batchOf(inputIds, seqLen, this.config), seqLen);
  }

  /**
   * The hidden state at each prompt's EOS token, [B, hidden]. Like transformers with the legacy
   * `eos_token_id: 2` that SD's and OpenAI's configs carry, the EOS position is the first occurrence of the
   * largest id: EOS (49407) is the largest id in CLIP's vocabulary, so this finds it whether the prompt is
   * padded with EOS (SD 1.x) or with 0 (SD 2.x).
   */
  pooled(hidden: Tensor, inputIds: ArrayLike<number>): Tensor {
    const [batch, seqLen, width] = hidden.shape as [number, number, number];
    if (inputIds.length !== batch * seqLen)
      throw new Error(`pooled: ${inputIds.length} ids do not match hidden states [${hidden.shape}]`);
    const rows = Array.from({ length: batch }, (_, b) => b * seqLen + firstArgmax(inputIds, b * seqLen, seqLen));
    // Gathering rows of the flattened sequence is an embedding lookup, and its backward scatters into them.
    return embedding(hidden.reshape([batch * seqLen, width]), rows);
  }

  /** Loads `text_model.*` (and `text_projection.*` for the projection model) from HF-named tensors. */
  loadWeights(tensors: ReadonlyMap<string, TensorData>): void {
    loadCLIPWeights(this, tensors);
  }
}

/** The text tower with `text_projection` (no bias): prompt embeddings in CLIP's joint space. */
export class CLIPTextModelWithProjection extends CLIPTextModel {
  readonly textProjection: Linear;
  constructor(config: CLIPTextConfig, options: CLIPModelOptions = {}) {
    const rng = options.rng ?? new Rng(0);
    super(config, { ...options, rng });
    this.textProjection = this.child(
      "text_projection",
      new Linear(config.hiddenSize, config.projectionDim, { bias: false, rng }),
    );
  }

  /** text_embeds [B, projection_dim] (not normalised), for ids [B, seqLen]. */
  textEmbeds(inputIds: ArrayLike<number>, seqLen = this.config.maxPositionEmbeddings): Tensor {
    return this.textProjection.forward(this.pooled(this.forward(inputIds, seqLen), inputIds));
  }
}

function batchOf(inputIds: ArrayLike<number>, seqLen: number, config: CLIPTextConfig): number {
  if (seqLen > config.maxPositionEmbeddings)
    throw new Error(
      `CLIPTextModel: sequences of ${seqLen} tokens exceed max_position_embeddings ${config.maxPositionEmbeddings}; truncate them (the tokenizer does, to 77)`,
    );
  if (inputIds.length === 0 || inputIds.length % seqLen)
    throw new Error(
      `CLIPTextModel: ${inputIds.length} ids are not a whole number of ${seqLen}-token sequences; pass [B, ${seqLen}] ids flattened row by row`,
    );
  return inputIds.length / seqLen;
}

function firstArgmax(ids: ArrayLike<number>, start: number, length: number): number {
  let best = 0;
  for (let i = 1; i < length; i++) if (ids[start + i]! > ids[start + best]!) best = i;
  return best;
}
