/**
 * `@textcraftor/core/internal`: what the project's own packages, tests and benchmarks reach beyond the supported
 * surface — buffer storage and pool, adapter classification, dtype and pickle codecs, single-file checkpoint
 * conversion, model layout arithmetic, and the trainer's step and checkpoint pieces. These change without notice;
 * a tool built on the core should need only the package root.
 */
export { Storage } from "./tensor/tensor.ts";
export { BufferPool } from "./tensor/pool.ts";
export { envVar } from "./device/open-device.ts";
export { classifyAdapter, describeAdapter, type AdapterKind, type AdapterDescription } from "./device/classify.ts";
export { stableFeatures } from "./device/bun-features.ts";
export * from "./io/dtypes.ts";
export * from "./io/pickle.ts";
export { componentWeightFile, readComponentWeights } from "./models/component-weights.ts";
export {
  splitSingleFile,
  isSingleFileModelTensor,
  ldmUnetToDiffusers,
  ldmVaeToDiffusers,
  ldmTextEncoderToDiffusers,
  SD15_UNET_LAYOUT,
} from "./models/convert/ldm.ts";
export {
  unetLayout,
  type UNetLayout,
  type DownBlockLayout,
  type UpBlockLayout,
  type MidBlockLayout,
  type ResnetLayout,
  type AttentionLayout,
} from "./models/unet/layout.ts";
export { countUNetParameters } from "./models/unet/parameter-count.ts";
export { sinusoidalTimestepEmbedding } from "./models/unet/embeddings.ts";
export { countVaeParameters } from "./models/vae/config.ts";
export { renameLegacyVaeAttention } from "./models/vae/convert.ts";
export { guidedNoise } from "./pipelines/denoise.ts";
export { RESUMABLE_CHANGES, resumeConflicts } from "./training/config.ts";
export { rewardGraph, gradientWindow, type TrainingModels } from "./training/step.ts";
export { optimizationStep } from "./training/trainer.ts";
export { saveCheckpoint, loadCheckpoint, type RunCounters } from "./training/state.ts";
export { acquireRunLock, RunLockedError, type RunLock } from "./training/run-lock.ts";
