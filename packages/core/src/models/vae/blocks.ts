/**
 * The VAE's building blocks, with diffusers' module names so checkpoints load by name: ResnetBlock2D
 * (no time embedding; the down/upsamplers are the UNet's), the mid block's single-head attention, UNetMidBlock2D,
 * DownEncoderBlock2D and UpDecoderBlock2D.
 */
import type { Tensor } from "../../tensor/tensor.ts";
import { scaledDotProductAttention } from "../../ops/attention.ts";
import { transpose } from "../../ops/shape.ts";
import { Conv2d, GroupNorm, Linear } from "../../nn/layers.ts";
import { Module, ModuleList } from "../../nn/module.ts";
import type { Rng } from "../../nn/init.ts";
import { Downsample2D, Upsample2D } from "../unet/blocks.ts";
import { scope } from "../../tensor/scope.ts";

/** Shared by every block: GroupNorm groups and eps, and the generator for the (pre-load) initial weights. */
export interface BlockOptions { groups: number; eps: number; rng: Rng }

export class ResnetBlock2D extends Module {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  readonly convShortcut: Conv2d | null;

  constructor(inChannels: number, outChannels: number, { groups, eps, rng }: BlockOptions) {
    super();
    this.norm1 = this.child("norm1", new GroupNorm(groups, inChannels, eps));
    this.conv1 = this.child("conv1", new Conv2d(inChannels, outChannels, 3, { padding: 1, rng }));
    this.norm2 = this.child("norm2", new GroupNorm(groups, outChannels, eps));
    this.conv2 = this.child("conv2", new Conv2d(outChannels, outChannels, 3, { padding: 1, rng }));
    this.convShortcut = inChannels === outChannels ? null : this.child("conv_shortcut", new Conv2d(inChannels, outChannels, 1, { rng }));
  }

  forward(x: Tensor): Tensor {
    return scope(() => {
      const h = this.conv2.forward(this.norm2.forward(this.conv1.forward(this.norm1.forward(x, true)), true));
      return (this.convShortcut ? this.convShortcut.forward(x) : x).add(h);
    });
  }
}

/** Single-head self-attention over the H·W pixels with a residual (head dim = channels). */
export class Attention extends Module {
  readonly groupNorm: GroupNorm;
  readonly toQ: Linear;
  readonly toK: Linear;
  readonly toV: Linear;
  readonly toOut: ModuleList<Linear>;

  constructor(channels: number, { groups, eps, rng }: BlockOptions) {
    super();
    this.groupNorm = this.child("group_norm", new GroupNorm(groups, channels, eps));
    this.toQ = this.child("to_q", new Linear(channels, channels, { rng }));
    this.toK = this.child("to_k", new Linear(channels, channels, { rng }));
    this.toV = this.child("to_v", new Linear(channels, channels, { rng }));
    // diffusers' to_out is [Linear, Dropout]; only the Linear has weights, hence `to_out.0`.
    this.toOut = this.child("to_out", new ModuleList([new Linear(channels, channels, { rng })]));
  }

  forward(x: Tensor): Tensor {
    return scope(() => {
      const [batch, channels, height, width] = x.shape as [number, number, number, number];
      const tokens = transpose(this.groupNorm.forward(x).reshape([batch, channels, height * width]), 1, 2);
      const attended = scaledDotProductAttention(this.toQ.forward(tokens), this.toK.forward(tokens), this.toV.forward(tokens));
      return x.add(transpose(this.toOut.at(0).forward(attended), 1, 2).reshape(x.shape));
    });
  }
}

/** UNetMidBlock2D as the VAE uses it: resnet → attention → resnet at constant width. */
export class MidBlock2D extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly attentions: ModuleList<Attention>;

  constructor(channels: number, o: BlockOptions) {
    super();
    this.resnets = this.child("resnets", new ModuleList([new ResnetBlock2D(channels, channels, o), new ResnetBlock2D(channels, channels, o)]));
    this.attentions = this.child("attentions", new ModuleList([new Attention(channels, o)]));
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
    this.resnets = this.child("resnets", new ModuleList(Array.from({ length: layers }, (_, i) => new ResnetBlock2D(i === 0 ? inChannels : outChannels, outChannels, o))));
    this.downsamplers = addDownsample ? this.child("downsamplers", new ModuleList([new Downsample2D(outChannels, 0, o.rng)])) : null;
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
    this.resnets = this.child("resnets", new ModuleList(Array.from({ length: layers }, (_, i) => new ResnetBlock2D(i === 0 ? inChannels : outChannels, outChannels, o))));
    this.upsamplers = addUpsample ? this.child("upsamplers", new ModuleList([new Upsample2D(outChannels, o.rng)])) : null;
  }

  forward(x: Tensor): Tensor {
    for (const resnet of this.resnets) x = resnet.forward(x);
    const up = this.upsamplers?.at(0);
    // The 4×-larger upsampled map is an intermediate worth freeing at once when nothing records it.
    return up ? scope(() => up.forward(x)) : x;
  }
}
