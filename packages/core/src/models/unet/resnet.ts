/** diffusers' ResnetBlock2D with a time embedding (resnet_time_scale_shift "default"). */
import { Conv2d, GroupNorm, Linear } from "../../nn/layers.ts";
import type { Rng } from "../../nn/init.ts";
import { Module } from "../../nn/module.ts";
import type { Tensor } from "../../tensor/tensor.ts";

export interface ResnetOptions { groups: number; eps: number; tembChannels: number; outputScaleFactor: number; rng: Rng }

export class ResnetBlock2D extends Module {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly timeEmbProj: Linear;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  /** A 1×1 conv that matches the residual's channels when they change. */
  readonly convShortcut: Conv2d | null;
  private readonly outputScaleFactor: number;

  constructor(inChannels: number, outChannels: number, { groups, eps, tembChannels, outputScaleFactor, rng }: ResnetOptions) {
    super();
    this.norm1 = this.child("norm1", new GroupNorm(groups, inChannels, eps));
    this.conv1 = this.child("conv1", new Conv2d(inChannels, outChannels, 3, { padding: 1, rng }));
    this.timeEmbProj = this.child("time_emb_proj", new Linear(tembChannels, outChannels, { rng }));
    this.norm2 = this.child("norm2", new GroupNorm(groups, outChannels, eps));
    this.conv2 = this.child("conv2", new Conv2d(outChannels, outChannels, 3, { padding: 1, rng }));
    this.convShortcut = inChannels === outChannels ? null : this.child("conv_shortcut", new Conv2d(inChannels, outChannels, 1, { rng }));
    this.outputScaleFactor = outputScaleFactor;
  }

  /**
   * x [B, Cin, H, W]; `tembActivated` is SiLU(time embedding) [B, tembChannels]. diffusers applies that
   * SiLU inside every resnet; it is the same tensor for all of them, so the UNet computes it once.
   */
  forward(x: Tensor, tembActivated: Tensor): Tensor {
    const [batch] = x.shape;
    let h = this.conv1.forward(this.norm1.forward(x, true));
    const temb = this.timeEmbProj.forward(tembActivated);
    h = h.add(temb.reshape([batch!, temb.shape[1]!, 1, 1]));
    h = this.conv2.forward(this.norm2.forward(h, true));
    const out = (this.convShortcut ? this.convShortcut.forward(x) : x).add(h);
    return this.outputScaleFactor === 1 ? out : out.div(this.outputScaleFactor);
  }
}
