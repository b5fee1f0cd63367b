export { Tensor, numel, type DType } from "./tensor.ts";
export { backward, checkpoint, noGrad, enableGrad, isGradEnabled, record, type Node } from "./autograd.ts";
export { scope, scopeAsync, keep } from "./scope.ts";
export {
  useDevice,
  createRuntime,
  withRuntime,
  kernelFamily,
  initRuntime,
  runtime,
  memoryStats,
  type KernelFamily,
  type Runtime,
  type RuntimeOptions,
} from "./runtime.ts";
