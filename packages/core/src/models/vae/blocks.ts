/**
 * The VAE's stages, with diffusers' module names so checkpoints load by name: UNetMidBlock2D, DownEncoderBlock2D
 * and UpDecoderBlock2D, built from the shared ResnetBlock2D (no time embedding) and Attention (one head over the
 * pixels, with its own group norm and a residual).
 */
import type { Tensor } from "../../tensor/tensor.ts";
import { Module, ModuleList } from "../../nn/module.ts";
import type { Rng } from "../../nn/init.ts";
import { Attention } from "../common/attention.ts";
import { Downsample2D, Upsample2D } from "../common/resample.ts";
import { ResnetBlock2D } from "../common/resnet.ts";
import { scope } from "../../tensor/scope.ts";

/** Shared by every block: GroupNorm groups and eps, and the generator for the (pre-load) initial weights. */
export interface BlockOptions {
  groups: number;
  eps: number;
  rng: Rng;
}

/** UNetMidBlock2D as the VAE uses it: resnet → attention → resnet at constant width. */
export class MidBlock2D extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly attentions: ModuleList<Attention>;

  constructor(channels: number, o: BlockOptions) {
    super();
    this.resnets = this.child(
      "resnets",
      new ModuleList([new ResnetBlock2D(channels, channels, o), new ResnetBlock2D(channels, channels, o)]),
    );
    this.attentions = this.child(
      "attentions",
      new ModuleList([
        new Attention(channels, {
          heads: 1,
          bias: true,
          norm: { groups: o.groups, eps: o.eps },
          residualConnection: true,
          rng: o.rng,
        }),
      ]),
    );
  }

  forward(x: Tensor): Tensor {
    return this.resnets.at(1).forward(this.attentions.at(0).forward(this.resnets.at(0).forward(x)));
  }
}

/** `layers` resnets, the first changing the width, then an optional downsampler. */
export class DownEncoderBlock2D extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly downsamplers: ModuleList<Downsample2D> | null;

  constructor(inChannels: number, outChannels: number, layers: number, addDownsample: boolean, o: BlockOptions) {
    super();
    this.resnets = this.child(
      "resnets",
      new ModuleList(
        Array.from({ length: layers }, (_, i) => new ResnetBlock2D(i === 0 ? inChannels : outChannels, outChannels, o)),
      ),
    );
    this.downsamplers = addDownsample
      ? this.child("downsamplers", new ModuleList([new Downsample2D(outChannels, 0, o.rng)]))
      : null;
  }

  forward(x: Tensor): Tensor {
    for (const resnet of this.resnets) x = resnet.forward(x);
    return this.downsamplers ? this.downsamplers.at(0).forward(x) : x;
  }
}

/** `layers` resnets (the decoder passes layers_per_block + 1), then an optional nearest ×2 upsampler. */
export class UpDecoderBlock2D extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly upsamplers: ModuleList<Upsample2D> | null;

  constructor(inChannels: number, outChannels: number, layers: number, addUpsample: boolean, o: BlockOptions) {
    super();
    this.resnets = this.child(
      "resnets",
      new ModuleList(
        Array.from({ length: layers }, (_, i) => new ResnetBlock2D(i === 0 ? inChannels : outChannels, outChannels, o)),
      ),
    );
    this.upsamplers = addUpsample
      ? this.child("upsamplers", new ModuleList([new Upsample2D(outChannels, o.rng)]))
      : null;
  }

  forward(x: Tensor): Tensor {
    for (const resnet of this.resnets) x = resnet.forward(x);
    const up = this.upsamplers?.at(0);
    // The 4×-larger upsampled map is an intermediate worth freeing at once when nothing records it.
    return up ? scope(() => up.forward(x)) : x;
  }
}
