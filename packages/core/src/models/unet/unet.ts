/**
 * UNet2DConditionModel (Stable Diffusion 1.x/2.x): predicts the noise in a latent `sample` at the given
 * timesteps, conditioned on text states through cross-attention. Built from a diffusers `unet/config.json`;
 * parameter names are diffusers' state_dict keys, so checkpoints load by name with `loadStateDict`.
 */
import { Conv2d, GroupNorm } from "../../nn/layers.ts";
import { Rng } from "../../nn/init.ts";
import { Module, ModuleList } from "../../nn/module.ts";
import { affine, silu } from "../../ops/elementwise.ts";
import { isGradEnabled } from "../../tensor/autograd.ts";
import { scope } from "../../tensor/scope.ts";
import { Tensor } from "../../tensor/tensor.ts";
import {
  CrossAttnDownBlock2D,
  CrossAttnUpBlock2D,
  DownBlock2D,
  UNetMidBlock2DCrossAttn,
  UpBlock2D,
  type BlockContext,
} from "./blocks.ts";
import { parseUNetConfig, type UNetConfig } from "./config.ts";
import { TimestepEmbedding, sinusoidalTimestepEmbedding } from "./embeddings.ts";
import { unetLayout, type UNetLayout } from "./layout.ts";

export interface UNetOptions {
  /** Generator for the initial weights (they are normally replaced by a checkpoint). */
  rng?: Rng;
  /** Recompute each resnet's and transformer's activations during backward instead of storing them. */
  gradientCheckpointing?: boolean;
}

export class UNet2DConditionModel extends Module {
  readonly config: UNetConfig;
  readonly layout: UNetLayout;
  gradientCheckpointing: boolean;
  readonly convIn: Conv2d;
  readonly timeEmbedding: TimestepEmbedding;
  readonly downBlocks: ModuleList<DownBlock2D>;
  readonly midBlock: UNetMidBlock2DCrossAttn;
  readonly upBlocks: ModuleList<UpBlock2D>;
  readonly convNormOut: GroupNorm;
  readonly convOut: Conv2d;

  /** `config` is a diffusers `unet/config.json` object (snake_case keys). */
  constructor(config: Record<string, unknown>, { rng = new Rng(0), gradientCheckpointing = false }: UNetOptions = {}) {
    super();
    const c = (this.config = parseUNetConfig(config));
    const layout = (this.layout = unetLayout(c));
    this.gradientCheckpointing = gradientCheckpointing;
    const ch0 = c.blockOutChannels[0]!;
    this.convIn = this.child("conv_in", new Conv2d(c.inChannels, ch0, 3, { padding: 1, rng }));
    this.timeEmbedding = this.child("time_embedding", new TimestepEmbedding(ch0, c.timeEmbeddingDim, rng));
    this.downBlocks = this.child(
      "down_blocks",
      new ModuleList(
        layout.down.map((b) =>
          b.type === "CrossAttnDownBlock2D" ? new CrossAttnDownBlock2D(b, c, rng) : new DownBlock2D(b, c, rng),
        ),
      ),
    );
    this.midBlock = this.child(
      "mid_block",
      new UNetMidBlock2DCrossAttn(layout.mid.channels, layout.mid.attention, c, rng),
    );
    this.upBlocks = this.child(
      "up_blocks",
      new ModuleList(
        layout.up.map((b) =>
          b.type === "CrossAttnUpBlock2D" ? new CrossAttnUpBlock2D(b, c, rng) : new UpBlock2D(b, c, rng),
        ),
      ),
    );
    this.convNormOut = this.child("conv_norm_out", new GroupNorm(c.normNumGroups, ch0, c.normEps));
    this.convOut = this.child("conv_out", new Conv2d(ch0, c.outChannels, 3, { padding: 1, rng }));
  }

  /**
   * sample [B, in_channels, H, W] (H, W divisible by 2 per downsampler), timesteps one number for all or
   * one per batch item, encoderHiddenStates [B, L, cross_attention_dim] → noise prediction [B, out_channels, H, W].
   */
  forward(sample: Tensor, timesteps: number | readonly number[], encoderHiddenStates: Tensor): Tensor {
    const c = this.config;
    const steps = this.checkInputs(sample, timesteps, encoderHiddenStates);
    // Each part frees its intermediates on return (an SD 1.5 forward would otherwise hold every activation);
    // those the tape reads stay with their nodes until backward visits them.
    const recording =
      isGradEnabled() &&
      (sample.requiresGrad || encoderHiddenStates.requiresGrad || this.parameters().some((p) => p.requiresGrad));
    return scope(() => {
      const tembActivated = scope(() => {
        const sinusoids = Tensor.from(
          sinusoidalTimestepEmbedding(steps, c.blockOutChannels[0]!, c.flipSinToCos, c.freqShift),
          [steps.length, c.blockOutChannels[0]!],
        );
        return silu(this.timeEmbedding.forward(sinusoids));
      });
      const ctx: BlockContext = {
        tembActivated,
        encoderHiddenStates,
        gradientCheckpointing: this.gradientCheckpointing && recording,
      };

      let h = scope(() => this.convIn.forward(c.centerInputSample ? affine(sample, 2, -1) : sample));
      const skips = [h];
      for (const block of this.downBlocks) {
        const out = scope(() => block.forward(h, ctx));
        skips.push(...out.skips);
        h = out.hidden;
      }
      h = scope(() => this.midBlock.forward(h, ctx));
      for (const block of this.upBlocks) h = scope(() => block.forward(h, skips, ctx));
      return scope(() => this.convOut.forward(this.convNormOut.forward(h, true)));
    });
  }

  private checkInputs(sample: Tensor, timesteps: number | readonly number[], encoderHiddenStates: Tensor): number[] {
    const c = this.config;
    const [batch, channels, height, width] = sample.shape;
    if (sample.ndim !== 4 || channels !== c.inChannels) {
      throw new Error(
        `UNet2DConditionModel: sample has shape [${sample.shape}]; expected [B, ${c.inChannels}, H, W] (in_channels ${c.inChannels})`,
      );
    }
    const factor = 2 ** this.layout.down.filter((b) => b.downsample).length;
    if (height! % factor !== 0 || width! % factor !== 0) {
      throw new Error(
        `UNet2DConditionModel: sample is ${height}×${width}; height and width must be multiples of ${factor} so the skip connections line up (pad or resize the latents)`,
      );
    }
    const [b, , dim] = encoderHiddenStates.shape;
    if (encoderHiddenStates.ndim !== 3 || b !== batch || dim !== c.crossAttentionDim) {
      throw new Error(
        `UNet2DConditionModel: encoderHiddenStates has shape [${encoderHiddenStates.shape}]; expected [${batch}, L, ${c.crossAttentionDim}] (batch, tokens, cross_attention_dim)`,
      );
    }
    const steps = typeof timesteps === "number" ? Array<number>(batch!).fill(timesteps) : [...timesteps];
    if (steps.length !== batch || steps.some((t) => !Number.isFinite(t))) {
      throw new Error(
        `UNet2DConditionModel: got timesteps [${steps}] for a batch of ${batch}; pass one number, or one per batch item`,
      );
    }
    return steps;
  }
}
