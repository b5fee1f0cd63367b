export * from "./device/index.ts";
export * from "./tensor/index.ts";
export * from "./ops/index.ts";
export * from "./nn/index.ts";
export * from "./optim/index.ts";
export * from "./tokenizer/index.ts";
export * from "./schedulers/index.ts";
