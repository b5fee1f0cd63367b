/** diffusers' Downsample2D and Upsample2D (conv variants), shared by the UNet and the VAE. */
import { Conv2d } from "../../nn/layers.ts";
import type { Rng } from "../../nn/init.ts";
import { Module } from "../../nn/module.ts";
import { upsampleNearest2x } from "../../ops/conv.ts";
import type { Tensor } from "../../tensor/tensor.ts";

/** Conv3×3 with stride 2. diffusers' `downsample_padding 0` means padding only bottom and right by one. */
export class Downsample2D extends Module {
  readonly conv: Conv2d;
  constructor(channels: number, padding: number, rng: Rng) {
    super();
    this.conv = this.child(
      "conv",
      new Conv2d(channels, channels, 3, { stride: 2, padding: padding === 0 ? [0, 1, 0, 1] : padding, rng }),
    );
  }
  forward(x: Tensor): Tensor {
    return this.conv.forward(x);
  }
}

/** Nearest-neighbour ×2, then conv3×3. */
export class Upsample2D extends Module {
  readonly conv: Conv2d;
  constructor(channels: number, rng: Rng) {
    super();
    this.conv = this.child("conv", new Conv2d(channels, channels, 3, { padding: 1, rng }));
  }
  forward(x: Tensor): Tensor {
    return this.conv.forward(upsampleNearest2x(x));
  }
}
