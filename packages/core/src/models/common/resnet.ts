/**
 * diffusers' ResnetBlock2D (resnet_time_scale_shift "default"), shared by the UNet (with a time embedding) and
 * the VAE (without one, temb_channels None): GroupNorm → SiLU → conv, (+ time embedding), GroupNorm → SiLU → conv,
 * plus the residual through a 1×1 conv where the width changes.
 */
import { Conv2d, GroupNorm, Linear } from "../../nn/layers.ts";
import type { Rng } from "../../nn/init.ts";
import { Module } from "../../nn/module.ts";
import { scope } from "../../tensor/scope.ts";
import type { Tensor } from "../../tensor/tensor.ts";

export interface ResnetOptions {
  groups: number;
  eps: number;
  /** Width of the time embedding; omitted, the block has no `time_emb_proj` (the VAE's). */
  tembChannels?: number;
  /** diffusers' output_scale_factor: the output is divided by it. */
  outputScaleFactor?: number;
  rng: Rng;
}

export class ResnetBlock2D extends Module {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly timeEmbProj: Linear | null;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  /** A 1×1 conv that matches the residual's channels when they change. */
  readonly convShortcut: Conv2d | null;
  private readonly outputScaleFactor: number;

  constructor(
    inChannels: number,
    outChannels: number,
    { groups, eps, tembChannels, outputScaleFactor = 1, rng }: ResnetOptions,
  ) {
    super();
    this.norm1 = this.child("norm1", new GroupNorm(groups, inChannels, eps));
    this.conv1 = this.child("conv1", new Conv2d(inChannels, outChannels, 3, { padding: 1, rng }));
    this.timeEmbProj =
      tembChannels === undefined ? null : this.child("time_emb_proj", new Linear(tembChannels, outChannels, { rng }));
    this.norm2 = this.child("norm2", new GroupNorm(groups, outChannels, eps));
    this.conv2 = this.child("conv2", new Conv2d(outChannels, outChannels, 3, { padding: 1, rng }));
    this.convShortcut =
      inChannels === outChannels ? null : this.child("conv_shortcut", new Conv2d(inChannels, outChannels, 1, { rng }));
    this.outputScaleFactor = outputScaleFactor;
  }

  /**
   * x [B, Cin, H, W]; `tembActivated` is SiLU(time embedding) [B, tembChannels], required exactly when the block
   * has a time projection. diffusers applies that SiLU inside every resnet; it is the same tensor for all of them,
   * so the UNet computes it once.
   */
  forward(x: Tensor, tembActivated?: Tensor): Tensor {
    if (!this.timeEmbProj !== !tembActivated) {
      throw new Error(
        `ResnetBlock2D: ${this.timeEmbProj ? "this block needs a time embedding" : "this block has no time_emb_proj, so it takes no time embedding"}`,
      );
    }
    return scope(() => {
      let h = this.conv1.forward(this.norm1.forward(x, true));
      if (this.timeEmbProj && tembActivated) {
        const temb = this.timeEmbProj.forward(tembActivated);
        h = h.add(temb.reshape([x.shape[0]!, temb.shape[1]!, 1, 1]));
      }
      // The skip connection is added in conv2's epilogue.
      const skip = this.convShortcut ? this.convShortcut.forward(x) : x;
      const out = this.conv2.forward(this.norm2.forward(h, true), skip);
      return this.outputScaleFactor === 1 ? out : out.div(this.outputScaleFactor);
    });
  }
}
