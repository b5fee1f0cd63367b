/**
 * AutoencoderKL configuration, read from a diffusers `vae/config.json` object (snake_case keys), and the
 * parameter count it implies, computed from the config alone so a 335 MB model can be sized before loading.
 */
import { Schema } from "effect";
import { IntUpTo, PositiveFinite, decodeConfig } from "../config-schema.ts";

export interface VaeConfig {
  inChannels: number;
  outChannels: number;
  latentChannels: number;
  blockOutChannels: number[];
  layersPerBlock: number;
  normNumGroups: number;
  /** diffusers hard-codes 1e-6 for every GroupNorm of the VAE; it is not a config.json key. */
  normEps: number;
  sampleSize: number;
  scalingFactor: number;
}

const DOWN_BLOCK = "DownEncoderBlock2D";
const UP_BLOCK = "UpDecoderBlock2D";

/** Channel counts beyond this are a broken file, not a model (SD's largest is 512). */
const MAX_CHANNELS = 16_384;
const Channels = IntUpTo(MAX_CHANNELS);

/** The numeric fields, each with diffusers' default; a field given as null or of the wrong type is an error. */
const DEFAULTS = {
  in_channels: 3,
  out_channels: 3,
  latent_channels: 4,
  block_out_channels: [64],
  layers_per_block: 1,
  norm_num_groups: 32,
  sample_size: 32,
  scaling_factor: 0.18215,
};
const VaeJson = Schema.Struct({
  in_channels: Channels,
  out_channels: Channels,
  latent_channels: Channels,
  block_out_channels: Schema.NonEmptyArray(Channels),
  layers_per_block: IntUpTo(64),
  norm_num_groups: Channels,
  sample_size: IntUpTo(MAX_CHANNELS),
  // Latents are multiplied by it going in and divided by it coming out: 0 or ∞ makes every image NaN.
  scaling_factor: PositiveFinite,
});

/** Parses a diffusers `vae/config.json`, filling diffusers' defaults and refusing variants this model does not implement. */
export function parseVaeConfig(json: Record<string, unknown>): VaeConfig {
  const c = decodeConfig(VaeJson, { ...DEFAULTS, ...json }, "vae config");
  const config: VaeConfig = {
    inChannels: c.in_channels,
    outChannels: c.out_channels,
    latentChannels: c.latent_channels,
    blockOutChannels: [...c.block_out_channels],
    layersPerBlock: c.layers_per_block,
    normNumGroups: c.norm_num_groups,
    normEps: 1e-6,
    sampleSize: c.sample_size,
    scalingFactor: c.scaling_factor,
  };
  checkSupported(json, config);
  return config;
}

function checkSupported(json: Record<string, unknown>, c: VaeConfig): void {
  const unsupported = (what: string) => {
    throw new Error(`vae config: ${what}; only the Stable Diffusion 1.x/2.x AutoencoderKL layout is implemented`);
  };
  if ((json.act_fn ?? "silu") !== "silu") unsupported(`act_fn "${json.act_fn}" is not "silu"`);
  for (const [key, type] of [
    ["down_block_types", DOWN_BLOCK],
    ["up_block_types", UP_BLOCK],
  ] as const) {
    const types = json[key] as unknown[] | undefined;
    if (types && (types.length !== c.blockOutChannels.length || types.some((t) => t !== type))) {
      unsupported(`"${key}" is ${JSON.stringify(types)}, expected ${c.blockOutChannels.length} × "${type}"`);
    }
  }
  for (const flag of ["use_quant_conv", "use_post_quant_conv", "mid_block_add_attention"]) {
    if (json[flag] === false) unsupported(`"${flag}" is false`);
  }
  if (json.latents_mean != null || json.shift_factor != null)
    unsupported("latents_mean / shift_factor (SDXL/SD3-style latent normalisation) are set");
  const bad = c.blockOutChannels.find((ch) => ch % c.normNumGroups !== 0);
  if (bad !== undefined)
    throw new Error(
      `vae config: block_out_channels entry ${bad} is not divisible by norm_num_groups ${c.normNumGroups}`,
    );
}

const conv = (cin: number, cout: number, k: number) => cout * cin * k * k + cout;
const groupNorm = (c: number) => 2 * c;
const resnet = (cin: number, cout: number) =>
  groupNorm(cin) + conv(cin, cout, 3) + groupNorm(cout) + conv(cout, cout, 3) + (cin !== cout ? conv(cin, cout, 1) : 0);
// group_norm + to_q, to_k, to_v, to_out.0 (all with bias)
const attention = (c: number) => groupNorm(c) + 4 * (c * c + c);
const midBlock = (c: number) => 2 * resnet(c, c) + attention(c);

/** Number of parameters of the AutoencoderKL that `config` describes (83,653,863 for SD 1.5's VAE). */
export function countVaeParameters(c: VaeConfig): number {
  const ch = c.blockOutChannels,
    last = ch[ch.length - 1]!,
    n = ch.length;
  let encoder = conv(c.inChannels, ch[0]!, 3) + midBlock(last) + groupNorm(last) + conv(last, 2 * c.latentChannels, 3);
  ch.forEach((cout, i) => {
    const cin = ch[Math.max(i - 1, 0)]!;
    encoder += resnet(cin, cout) + (c.layersPerBlock - 1) * resnet(cout, cout) + (i < n - 1 ? conv(cout, cout, 3) : 0);
  });
  const up = [...ch].reverse();
  let decoder = conv(c.latentChannels, last, 3) + midBlock(last) + groupNorm(ch[0]!) + conv(ch[0]!, c.outChannels, 3);
  up.forEach((cout, i) => {
    const cin = up[Math.max(i - 1, 0)]!;
    decoder += resnet(cin, cout) + c.layersPerBlock * resnet(cout, cout) + (i < n - 1 ? conv(cout, cout, 3) : 0);
  });
  const quantConvs = conv(2 * c.latentChannels, 2 * c.latentChannels, 1) + conv(c.latentChannels, c.latentChannels, 1);
  return encoder + decoder + quantConvs;
}
