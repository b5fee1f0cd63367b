export { UNet2DConditionModel, type UNetOptions } from "./unet.ts";
export { parseUNetConfig, type UNetConfig, type DownBlockType, type UpBlockType } from "./config.ts";
export { unetLayout, type UNetLayout, type DownBlockLayout, type UpBlockLayout, type MidBlockLayout, type ResnetLayout, type AttentionLayout } from "./layout.ts";
export { countUNetParameters } from "./parameter-count.ts";
export { sinusoidalTimestepEmbedding } from "./embeddings.ts";
