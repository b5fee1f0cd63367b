export {
  parseCLIPTextConfig,
  parseCLIPVisionConfig,
  type CLIPTextConfig,
  type CLIPVisionConfig,
  type CLIPEncoderConfig,
  type CLIPActivation,
} from "./config.ts";
export { CLIPTextModel, CLIPTextModelWithProjection } from "./text.ts";
export type { CLIPModelOptions } from "./encoder.ts";
export { CLIPVisionModel, CLIPVisionModelWithProjection, type CLIPVisionOutput } from "./vision.ts";
export { openClipToHf, OPEN_CLIP_VIT_H_14 } from "./open-clip.ts";
