export { TRAIN_DEFAULTS, RESUMABLE_CHANGES, resumeConflicts, validateTrainConfig, type TrainConfig, type Truncation, type Trainable } from "./config.ts";
export { readPrompts, PromptSampler } from "./prompts.ts";
export { rewardGraph, gradientWindow, type TrainingModels } from "./step.ts";
export { saveCheckpoint, loadCheckpoint, type RunCounters } from "./state.ts";
export { train, type TrainOptions, type TrainResult, type StepMetrics } from "./trainer.ts";
export { exportTextEncoder } from "./export.ts";
