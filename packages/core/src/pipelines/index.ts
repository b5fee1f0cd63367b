export { sampleLatents, type NoisePredictor, type SampleOptions } from "./denoise.ts";
export { textToImage, encodePrompts, type TextToImageOptions, type TextEncoderLike } from "./text-to-image.ts";
export {
  hybridSchedule,
  mixEmbeddings,
  interpolateEmbeddings,
  controlledEmbeddings,
  type EncoderMix,
} from "./controls.ts";
export { evaluateRewards, pairwiseDistance, type EvaluateOptions, type RewardStats } from "./evaluate.ts";
