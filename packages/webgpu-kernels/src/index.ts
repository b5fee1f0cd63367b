/// <reference types="@webgpu/types" preserve="true" />
// The kernel families and the runner that batches their dispatches. The reference puts WebGPU's types into a
// consumer's declarations without a tsconfig entry.
export * from "./runner.ts";
export * from "./kernel.ts";
export * from "./elementwise.ts";
export * from "./matmul.ts";
export * from "./embedding.ts";
export * from "./copy.ts";
export * from "./adamw.ts";
export * from "./random.ts";
export * from "./norm.ts";
export * from "./softmax.ts";
export * from "./reduce.ts";
export * from "./conv2d.ts";
export * from "./resample.ts";
export * from "./attention.ts";
export { headStrides, type AttentionLayout, type HeadStrides } from "./attention-layout.ts";
export * from "./attention-rowwise.ts";
export * from "./glu.ts";
export * from "./cast.ts";
export * from "./storage-bindings.ts";
