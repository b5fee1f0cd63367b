export * from "./clip/index.ts";
export * from "./unet/index.ts";
export * from "./vae/index.ts";
export {
  loadStableDiffusion,
  loadTextEncoder,
  cloneTextEncoder,
  createStableDiffusion,
  ddimFor,
  type StableDiffusion,
  type LoadOptions,
} from "./stable-diffusion.ts";
export { readWeights, parseWeights } from "./weights-file.ts";
export { fetchModelFiles, type ModelFiles, type WeightsBytes } from "./model-files.ts";
export { readWeightFiles } from "./component-weights.ts";
export { SD15_TEXT_ENCODER_CONFIG, SD15_UNET_CONFIG, SD15_VAE_CONFIG } from "./sd15-configs.ts";
export { saveDiffusersFolder, saveComponent } from "./save-diffusers.ts";
export { singleFileStateDict } from "./convert/to-ldm.ts";
