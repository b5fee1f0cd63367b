/**
 * The UNet's parameter count from its config alone, so an 860M-parameter model can be sized (and its
 * config checked against a checkpoint's) without allocating 3.4 GB. The tests hold it to the modules' own count.
 */
import type { UNetConfig } from "./config.ts";
import { unetLayout, type AttentionLayout } from "./layout.ts";

const linear = (inF: number, outF: number, bias = true) => inF * outF + (bias ? outF : 0);
const conv = (cin: number, cout: number, k: number) => cout * cin * k * k + cout;
const norm = (c: number) => 2 * c;

const resnet = (cin: number, cout: number, temb: number) =>
  norm(cin) +
  conv(cin, cout, 3) +
  linear(temb, cout) +
  norm(cout) +
  conv(cout, cout, 3) +
  (cin !== cout ? conv(cin, cout, 1) : 0);

// to_q, to_k, to_v without bias; to_out.0 with bias.
const attention = (dim: number, contextDim: number) =>
  linear(dim, dim, false) + 2 * linear(contextDim, dim, false) + linear(dim, dim);
// GEGLU projection to 2·4·dim, then 4·dim back to dim.
const feedForward = (dim: number) => linear(dim, 8 * dim) + linear(4 * dim, dim);
const transformerBlock = (dim: number, contextDim: number) =>
  3 * norm(dim) + attention(dim, dim) + attention(dim, contextDim) + feedForward(dim);

function transformer(channels: number, a: AttentionLayout, c: UNetConfig): number {
  const projection = c.useLinearProjection ? linear(channels, channels) : conv(channels, channels, 1);
  return norm(channels) + 2 * projection + a.layers * transformerBlock(channels, c.crossAttentionDim);
}

/** Number of parameters of the UNet2DConditionModel that `c` describes (859,520,964 for SD 1.5). */
export function countUNetParameters(c: UNetConfig): number {
  const { down, mid, up } = unetLayout(c);
  const ch0 = c.blockOutChannels[0]!,
    temb = c.timeEmbeddingDim;
  let total =
    conv(c.inChannels, ch0, 3) + linear(ch0, temb) + linear(temb, temb) + norm(ch0) + conv(ch0, c.outChannels, 3);
  for (const block of [...down, ...up]) {
    const cout = block.resnets[0]!.outChannels;
    for (const r of block.resnets)
      total +=
        resnet(r.inChannels, r.outChannels, temb) + (block.attention ? transformer(cout, block.attention, c) : 0);
  }
  total += down
    .filter((b) => b.downsample)
    .reduce((s, b) => s + conv(b.resnets[0]!.outChannels, b.resnets[0]!.outChannels, 3), 0);
  total += up
    .filter((b) => b.upsample)
    .reduce((s, b) => s + conv(b.resnets[0]!.outChannels, b.resnets[0]!.outChannels, 3), 0);
  return total + 2 * resnet(mid.channels, mid.channels, temb) + transformer(mid.channels, mid.attention, c);
}
