/** The VAE encoder: image [B, 3, H, W] → moments [B, 2·latent, H/f, W/f] (mean and log-variance, f = 2^(blocks−1)). */
import { Conv2d, GroupNorm } from "../../nn/layers.ts";
import { Module, ModuleList } from "../../nn/module.ts";
import type { Rng } from "../../nn/init.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { DownEncoderBlock2D, MidBlock2D } from "./blocks.ts";
import type { VaeConfig } from "./config.ts";
import { scope } from "../../tensor/scope.ts";

export class Encoder extends Module {
  readonly convIn: Conv2d;
  readonly downBlocks: ModuleList<DownEncoderBlock2D>;
  readonly midBlock: MidBlock2D;
  readonly convNormOut: GroupNorm;
  readonly convOut: Conv2d;

  constructor(c: VaeConfig, rng: Rng) {
    super();
    const ch = c.blockOutChannels,
      last = ch[ch.length - 1]!;
    const o = { groups: c.normNumGroups, eps: c.normEps, rng };
    this.convIn = this.child("conv_in", new Conv2d(c.inChannels, ch[0]!, 3, { padding: 1, rng }));
    this.downBlocks = this.child(
      "down_blocks",
      new ModuleList(
        ch.map(
          (out, i) => new DownEncoderBlock2D(ch[Math.max(i - 1, 0)]!, out, c.layersPerBlock, i < ch.length - 1, o),
        ),
      ),
    );
    this.midBlock = this.child("mid_block", new MidBlock2D(last, o));
    this.convNormOut = this.child("conv_norm_out", new GroupNorm(c.normNumGroups, last, c.normEps));
    this.convOut = this.child("conv_out", new Conv2d(last, 2 * c.latentChannels, 3, { padding: 1, rng }));
  }

  forward(x: Tensor): Tensor {
    return scope(() => {
      let h = this.convIn.forward(x);
      for (const block of this.downBlocks) h = block.forward(h);
      return this.convOut.forward(this.convNormOut.forward(this.midBlock.forward(h), true));
    });
  }
}
