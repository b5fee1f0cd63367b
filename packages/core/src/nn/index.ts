export { Module, ModuleList, type TensorData } from "./module.ts";
export { Linear, Conv2d, GroupNorm, LayerNorm, Embedding } from "./layers.ts";
export { Rng, uniformInit, withInitMode, withParamDtype, type InitMode } from "./init.ts";
export { applyLoRA, mergeLoRA, DEFAULT_LORA_TARGETS, type LoRAOptions } from "./lora.ts";
export { kohyaLoRATensors, type KohyaPrefix } from "./lora-kohya.ts";
