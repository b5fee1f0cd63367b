export type { FileDType, LoadedTensor } from "./dtypes.ts";
export * from "./safetensors.ts";
export * from "./atomic.ts";
export * from "./torch-zip.ts";
export * from "./png.ts";
export * from "./safetensors-file.ts";
