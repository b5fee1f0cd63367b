/**
 * The channels of every block, derived from the config the way diffusers' UNet2DConditionModel
 * constructor does. The modules and the parameter count both read it, so they cannot disagree.
 */
import type { DownBlockType, UNetConfig, UpBlockType } from "./config.ts";

export interface ResnetLayout {
  inChannels: number;
  outChannels: number;
}
/** One Transformer2DModel per resnet of a cross-attention block. */
export interface AttentionLayout {
  heads: number;
  layers: number;
}

export interface DownBlockLayout {
  type: DownBlockType;
  resnets: ResnetLayout[];
  attention: AttentionLayout | null;
  downsample: boolean;
}

export interface UpBlockLayout {
  type: UpBlockType;
  /** inChannels counts the skip tensor concatenated onto the block's input. */
  resnets: ResnetLayout[];
  attention: AttentionLayout | null;
  upsample: boolean;
}

export interface MidBlockLayout {
  channels: number;
  attention: AttentionLayout;
}

export interface UNetLayout {
  down: DownBlockLayout[];
  mid: MidBlockLayout;
  up: UpBlockLayout[];
}

export function unetLayout(c: UNetConfig): UNetLayout {
  const ch = c.blockOutChannels,
    n = ch.length;
  const down = c.downBlockTypes.map((type, i): DownBlockLayout => {
    const cin = ch[Math.max(i - 1, 0)]!,
      cout = ch[i]!;
    return {
      type,
      resnets: Array.from({ length: c.layersPerBlock[i]! }, (_, j) => ({
        inChannels: j === 0 ? cin : cout,
        outChannels: cout,
      })),
      attention:
        type === "CrossAttnDownBlock2D" ? { heads: c.heads[i]!, layers: c.transformerLayersPerBlock[i]! } : null,
      downsample: i < n - 1,
    };
  });

  // Up block i mirrors down block n−1−i. Its resnets take, in order, the previous block's output (first
  // resnet) or their own (later ones), each concatenated with one skip tensor; the last skip of a block is
  // the one saved before that level's downsampler, so it has the next-shallower level's channel count.
  const rev = [...ch].reverse();
  const up = c.upBlockTypes.map((type, i): UpBlockLayout => {
    const level = n - 1 - i;
    const cout = rev[i]!,
      prev = rev[Math.max(i - 1, 0)]!,
      skipLast = rev[Math.min(i + 1, n - 1)]!;
    const layers = c.layersPerBlock[level]! + 1;
    return {
      type,
      resnets: Array.from({ length: layers }, (_, j) => ({
        inChannels: (j === 0 ? prev : cout) + (j === layers - 1 ? skipLast : cout),
        outChannels: cout,
      })),
      attention:
        type === "CrossAttnUpBlock2D" ? { heads: c.heads[level]!, layers: c.transformerLayersPerBlock[level]! } : null,
      upsample: i < n - 1,
    };
  });

  const mid = {
    channels: ch[n - 1]!,
    attention: { heads: c.heads[n - 1]!, layers: c.transformerLayersPerBlock[n - 1]! },
  };
  return { down, mid, up };
}
