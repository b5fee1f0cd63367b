export { UNet2DConditionModel, type UNetOptions } from "./unet.ts";
export { parseUNetConfig, type UNetConfig, type DownBlockType, type UpBlockType } from "./config.ts";
