/**
 * The UNet's stages, with diffusers' class and module names so checkpoints load by name:
 * DownBlock2D / CrossAttnDownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D / CrossAttnUpBlock2D.
 */
import type { Rng } from "../../nn/init.ts";
import { Module, ModuleList } from "../../nn/module.ts";
import { concat } from "../../ops/shape.ts";
import { checkpoint } from "../../tensor/autograd.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import type { UNetConfig } from "./config.ts";
import type { AttentionLayout, DownBlockLayout, UpBlockLayout } from "./layout.ts";
import { Downsample2D, Upsample2D } from "../common/resample.ts";
import { ResnetBlock2D } from "../common/resnet.ts";
import { Transformer2DModel } from "./transformer.ts";

/** What every stage needs besides its input. */
export interface BlockContext {
  /** SiLU(time embedding) [B, timeEmbeddingDim]. */
  tembActivated: Tensor;
  encoderHiddenStates: Tensor;
  /** Wrap each resnet and transformer in `checkpoint`: recompute its activations in backward instead of keeping them. */
  gradientCheckpointing: boolean;
}

function runResnet(resnet: ResnetBlock2D, h: Tensor, ctx: BlockContext): Tensor {
  const run = (x: Tensor, temb: Tensor) => resnet.forward(x, temb);
  return ctx.gradientCheckpointing ? checkpoint(run, h, ctx.tembActivated) : run(h, ctx.tembActivated);
}

function runTransformer(transformer: Transformer2DModel, h: Tensor, ctx: BlockContext): Tensor {
  const run = (x: Tensor, states: Tensor) => transformer.forward(x, states);
  return ctx.gradientCheckpointing ? checkpoint(run, h, ctx.encoderHiddenStates) : run(h, ctx.encoderHiddenStates);
}

const resnetOptions = (c: UNetConfig, rng: Rng, outputScaleFactor = 1) => ({
  groups: c.normNumGroups,
  eps: c.normEps,
  tembChannels: c.timeEmbeddingDim,
  outputScaleFactor,
  rng,
});

const transformers = (count: number, channels: number, a: AttentionLayout, c: UNetConfig, rng: Rng) =>
  new ModuleList(
    Array.from(
      { length: count },
      () =>
        new Transformer2DModel(channels, {
          heads: a.heads,
          layers: a.layers,
          crossAttentionDim: c.crossAttentionDim,
          groups: c.normNumGroups,
          useLinearProjection: c.useLinearProjection,
          rng,
        }),
    ),
  );

/** Resnets, then a downsampler (except at the deepest level). */
export class DownBlock2D extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly downsamplers: ModuleList<Downsample2D> | null;

  constructor(layout: DownBlockLayout, c: UNetConfig, rng: Rng) {
    super();
    this.resnets = this.child(
      "resnets",
      new ModuleList(layout.resnets.map((r) => new ResnetBlock2D(r.inChannels, r.outChannels, resnetOptions(c, rng)))),
    );
    const channels = layout.resnets[layout.resnets.length - 1]!.outChannels;
    this.downsamplers = layout.downsample
      ? this.child("downsamplers", new ModuleList([new Downsample2D(channels, c.downsamplePadding, rng)]))
      : null;
  }

  /** Returns the output and the skip tensors saved for the up path: one per resnet, plus the downsampled output. */
  forward(h: Tensor, ctx: BlockContext): { hidden: Tensor; skips: Tensor[] } {
    const skips: Tensor[] = [];
    this.resnets.items.forEach((resnet, i) => {
      h = this.afterResnet(i, runResnet(resnet, h, ctx), ctx);
      skips.push(h);
    });
    if (this.downsamplers) skips.push((h = this.downsamplers.at(0).forward(h)));
    return { hidden: h, skips };
  }

  protected afterResnet(_i: number, h: Tensor, _ctx: BlockContext): Tensor {
    return h;
  }
}

/** A DownBlock2D with a Transformer2DModel after each resnet. */
export class CrossAttnDownBlock2D extends DownBlock2D {
  readonly attentions: ModuleList<Transformer2DModel>;
  constructor(layout: DownBlockLayout, c: UNetConfig, rng: Rng) {
    super(layout, c, rng);
    const channels = layout.resnets[0]!.outChannels;
    this.attentions = this.child(
      "attentions",
      transformers(layout.resnets.length, channels, layout.attention!, c, rng),
    );
  }
  protected override afterResnet(i: number, h: Tensor, ctx: BlockContext): Tensor {
    return runTransformer(this.attentions.at(i), h, ctx);
  }
}

/** resnet → transformer → resnet at the deepest level, all scaled by mid_block_scale_factor. */
export class UNetMidBlock2DCrossAttn extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly attentions: ModuleList<Transformer2DModel>;

  constructor(channels: number, attention: AttentionLayout, c: UNetConfig, rng: Rng) {
    super();
    const options = resnetOptions(c, rng, c.midBlockScaleFactor);
    this.resnets = this.child(
      "resnets",
      new ModuleList([new ResnetBlock2D(channels, channels, options), new ResnetBlock2D(channels, channels, options)]),
    );
    this.attentions = this.child("attentions", transformers(1, channels, attention, c, rng));
  }

  forward(h: Tensor, ctx: BlockContext): Tensor {
    h = runResnet(this.resnets.at(0), h, ctx);
    return runResnet(this.resnets.at(1), runTransformer(this.attentions.at(0), h, ctx), ctx);
  }
}

/** Resnets, each on its input concatenated (on channels) with the latest skip tensor, then an upsampler (except at the top). */
export class UpBlock2D extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly upsamplers: ModuleList<Upsample2D> | null;

  constructor(layout: UpBlockLayout, c: UNetConfig, rng: Rng) {
    super();
    this.resnets = this.child(
      "resnets",
      new ModuleList(layout.resnets.map((r) => new ResnetBlock2D(r.inChannels, r.outChannels, resnetOptions(c, rng)))),
    );
    const channels = layout.resnets[0]!.outChannels;
    this.upsamplers = layout.upsample
      ? this.child("upsamplers", new ModuleList([new Upsample2D(channels, rng)]))
      : null;
  }

  /** Pops one tensor per resnet off the end of `skips`. */
  forward(h: Tensor, skips: Tensor[], ctx: BlockContext): Tensor {
    this.resnets.items.forEach((resnet, i) => {
      const skip = skips.pop();
      if (!skip)
        throw new Error(`${this.constructor.name}: ran out of skip tensors; the up blocks need one per resnet`);
      h = this.afterResnet(i, runResnet(resnet, concat([h, skip], 1), ctx), ctx);
    });
    return this.upsamplers ? this.upsamplers.at(0).forward(h) : h;
  }

  protected afterResnet(_i: number, h: Tensor, _ctx: BlockContext): Tensor {
    return h;
  }
}

/** An UpBlock2D with a Transformer2DModel after each resnet. */
export class CrossAttnUpBlock2D extends UpBlock2D {
  readonly attentions: ModuleList<Transformer2DModel>;
  constructor(layout: UpBlockLayout, c: UNetConfig, rng: Rng) {
    super(layout, c, rng);
    const channels = layout.resnets[0]!.outChannels;
    this.attentions = this.child(
      "attentions",
      transformers(layout.resnets.length, channels, layout.attention!, c, rng),
    );
  }
  protected override afterResnet(i: number, h: Tensor, ctx: BlockContext): Tensor {
    return runTransformer(this.attentions.at(i), h, ctx);
  }
}
