export { TRAIN_DEFAULTS, validateTrainConfig, type TrainConfig, type Truncation, type Trainable } from "./config.ts";
export { readPrompts, PromptSampler, PromptFileError } from "./prompts.ts";
export { train, prepareTraining, type TrainOptions, type TrainResult, type StepMetrics } from "./trainer.ts";
export { exportTextEncoder } from "./export.ts";
export { LR_SCHEDULERS, type LRScheduler } from "./lr-schedule.ts";
export {
  planTrainingMemory,
  formatMemoryPlan,
  type MemoryPlan,
  type PlannedPart,
  type PlanInputs,
} from "./memory-plan.ts";
