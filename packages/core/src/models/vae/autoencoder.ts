/**
 * AutoencoderKL, Stable Diffusion's VAE, built from a diffusers `vae/config.json`. Parameter names are
 * diffusers' (`decoder.up_blocks.0.resnets.0.conv1.weight`), so a diffusers state_dict loads as is.
 */
import { Rng } from "../../nn/init.ts";
import { Conv2d } from "../../nn/layers.ts";
import { Module, type TensorData } from "../../nn/module.ts";
import { affine, clamp } from "../../ops/elementwise.ts";
import { slice } from "../../ops/shape.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { parseVaeConfig, type VaeConfig } from "./config.ts";
import { renameLegacyVaeAttention } from "./convert.ts";
import { Decoder } from "./decoder.ts";
import { Encoder } from "./encoder.ts";
import { scope } from "../../tensor/scope.ts";

export interface AutoencoderKLOptions {
  /** Checkpoint each decoder up block (see `Decoder.gradientCheckpointing`). */
  gradientCheckpointing?: boolean;
  /** Seed of the initial weights, which matter only until a checkpoint is loaded. */
  seed?: number;
}

/** The encoder's diagonal Gaussian: diffusers' DiagonalGaussianDistribution, log-variance clamped to [-30, 20]. */
export interface LatentDistribution {
  mean: Tensor;
  logvar: Tensor;
}

export class AutoencoderKL extends Module {
  readonly encoder: Encoder;
  readonly decoder: Decoder;
  readonly quantConv: Conv2d;
  readonly postQuantConv: Conv2d;

  constructor(
    readonly config: VaeConfig,
    { gradientCheckpointing = false, seed = 0 }: AutoencoderKLOptions = {},
  ) {
    super();
    const rng = new Rng(seed),
      latent = config.latentChannels;
    this.encoder = this.child("encoder", new Encoder(config, rng));
    this.decoder = this.child("decoder", new Decoder(config, rng));
    this.quantConv = this.child("quant_conv", new Conv2d(2 * latent, 2 * latent, 1, { rng }));
    this.postQuantConv = this.child("post_quant_conv", new Conv2d(latent, latent, 1, { rng }));
    this.decoder.gradientCheckpointing = gradientCheckpointing;
  }

  /** From the object in a diffusers `vae/config.json`. */
  static fromConfig(json: Record<string, unknown>, options?: AutoencoderKLOptions): AutoencoderKL {
    return new AutoencoderKL(parseVaeConfig(json), options);
  }

  /** Loads a VAE state_dict in diffusers names, accepting the legacy mid-block attention names too. */
  loadWeights(tensors: ReadonlyMap<string, TensorData>): void {
    this.loadStateDict(renameLegacyVaeAttention(tensors));
  }

  /** images [B, in, H, W] in [-1, 1] → the latent distribution (unscaled: multiply samples by scaling_factor). */
  encode(images: Tensor): LatentDistribution {
    const { inChannels, latentChannels, blockOutChannels } = this.config;
    const factor = 2 ** (blockOutChannels.length - 1);
    const [, channels, height, width] = images.shape;
    if (images.ndim !== 4 || channels !== inChannels || height! % factor || width! % factor) {
      throw new Error(
        `AutoencoderKL.encode: expected images [B, ${inChannels}, H, W] with H and W multiples of ${factor}, got [${images.shape}]`,
      );
    }
    const moments = scope(() => this.quantConv.forward(this.encoder.forward(images)));
    const mean = slice(moments, 1, 0, latentChannels);
    const logvar = clamp(slice(moments, 1, latentChannels, 2 * latentChannels), -30, 20);
    return { mean, logvar };
  }

  /** latents [B, latent, h, w] (unscaled) → images [B, out, h·f, w·f] in about [-1, 1]. */
  decode(latents: Tensor): Tensor {
    if (latents.ndim !== 4 || latents.shape[1] !== this.config.latentChannels) {
      throw new Error(
        `AutoencoderKL.decode: expected latents [B, ${this.config.latentChannels}, h, w], got [${latents.shape}]`,
      );
    }
    return scope(() => this.decoder.forward(this.postQuantConv.forward(latents)));
  }

  /** Diffusion latents (scaled by scaling_factor) → images in [0, 1], differentiable as in PyTorch. */
  decodeToImage(latents: Tensor): Tensor {
    return scope(() => {
      const images = this.decode(affine(latents, 1 / this.config.scalingFactor));
      return clamp(affine(images, 0.5, 0.5), 0, 1);
    });
  }
}
