/// <reference types="@webgpu/types" preserve="true" />
/**
 * `@textcraftor/core`: the supported surface — device, tensors with autograd, ops and nn modules (for plugin
 * authors), models and their loaders, schedulers, pipelines, the reward interface and the TextCraftor trainer.
 * What the project's own packages and tests need beyond it lives in `@textcraftor/core/internal`. The reference
 * puts WebGPU's types (GPUDevice, GPUBuffer) into a consumer's declarations without a tsconfig entry.
 */
export * from "./device/index.ts";
export * from "./tensor/index.ts";
export * from "./ops/index.ts";
export * from "./nn/index.ts";
export * from "./optim/index.ts";
export * from "./tokenizer/index.ts";
export * from "./schedulers/index.ts";
export * from "./io/index.ts";
export * from "./models/index.ts";
export * from "./pipelines/index.ts";
export * from "./rewards/index.ts";
export * from "./training/index.ts";
export * from "./distributed/index.ts";
