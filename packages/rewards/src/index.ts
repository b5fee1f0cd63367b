/**
 * Reward plugins for TextCraftor: the four reward models of the paper (aesthetic, clip, pickscore, hpsv2),
 * weight-free image statistics, and what the CLI needs to assemble them (spec parsing, user plugin files).
 */
export { builtinRewards, createRegistry } from "./registry.ts";
export { parseRewardSpec, type RewardSpec } from "./spec.ts";
export { loadRewards } from "./load.ts";
export { loadRewardPlugin, checkRewardPlugin } from "./plugin-file.ts";
export {
  poolToClip,
  resizeCropToClip,
  preprocessForClip,
  clipNormalize,
  resampleMatrix,
  CLIP_MEAN,
  CLIP_STD,
  type PreprocessMode,
} from "./preprocess.ts";
export { l2Normalize, cosineSimilarity } from "./similarity.ts";
export { readClipCheckpoint, visionTower, textTower, type ClipCheckpoint } from "./clip-checkpoint.ts";
export { openClipConfigs } from "./open-clip-config.ts";
export { AestheticMLP } from "./aesthetic-mlp.ts";
export { clipPairReward, type ClipPairRewardDefinition } from "./clip-pair-reward.ts";
export { aesthetic } from "./plugins/aesthetic.ts";
export { clip } from "./plugins/clip.ts";
export { pickscore } from "./plugins/pickscore.ts";
export { hpsv2 } from "./plugins/hpsv2.ts";
export { colorfulness, contrast, brightness } from "./plugins/image-statistics.ts";
