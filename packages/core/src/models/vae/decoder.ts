/** The VAE decoder: latents [B, latent, h, w] → images [B, 3, h·f, w·f] in about [-1, 1]. */
import { checkpoint, isGradEnabled } from "../../tensor/autograd.ts";
import { Conv2d, GroupNorm } from "../../nn/layers.ts";
import { Module, ModuleList } from "../../nn/module.ts";
import type { Rng } from "../../nn/init.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { MidBlock2D, UpDecoderBlock2D } from "./blocks.ts";
import type { VaeConfig } from "./config.ts";
import { scope } from "../../tensor/scope.ts";

export class Decoder extends Module {
  readonly convIn: Conv2d;
  readonly midBlock: MidBlock2D;
  readonly upBlocks: ModuleList<UpDecoderBlock2D>;
  readonly convNormOut: GroupNorm;
  readonly convOut: Conv2d;
  /**
   * Re-run each up block during backward instead of keeping its activations: TextCraftor backpropagates
   * the reward through a 512×512 decode, whose last up blocks alone would keep several GB.
   */
  gradientCheckpointing = false;

  constructor(c: VaeConfig, rng: Rng) {
    super();
    const up = [...c.blockOutChannels].reverse();
    const o = { groups: c.normNumGroups, eps: c.normEps, rng };
    this.convIn = this.child("conv_in", new Conv2d(c.latentChannels, up[0]!, 3, { padding: 1, rng }));
    this.midBlock = this.child("mid_block", new MidBlock2D(up[0]!, o));
    this.upBlocks = this.child(
      "up_blocks",
      new ModuleList(
        up.map(
          (out, i) => new UpDecoderBlock2D(up[Math.max(i - 1, 0)]!, out, c.layersPerBlock + 1, i < up.length - 1, o),
        ),
      ),
    );
    this.convNormOut = this.child("conv_norm_out", new GroupNorm(c.normNumGroups, up[up.length - 1]!, c.normEps));
    this.convOut = this.child("conv_out", new Conv2d(up[up.length - 1]!, c.outChannels, 3, { padding: 1, rng }));
  }

  forward(z: Tensor): Tensor {
    return scope(() => {
      let h = this.midBlock.forward(this.convIn.forward(z));
      for (const block of this.upBlocks) {
        h =
          this.gradientCheckpointing && tapeRecords(block, h)
            ? checkpoint((x) => block.forward(x), h)
            : block.forward(h);
      }
      return this.convOut.forward(this.convNormOut.forward(h, true));
    });
  }
}

/** Whether ops on `x` and `module`'s parameters will be recorded: only then is there a backward to checkpoint for. */
const tapeRecords = (module: Module, x: Tensor): boolean =>
  isGradEnabled() && (x.requiresGrad || module.parameters().some((p) => p.requiresGrad));
