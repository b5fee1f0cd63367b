/**
 * A device that allocates nothing and runs nothing: every call of the WebGPU API our runtime makes is accepted
 * and forgotten, and reads return zeros. Code run on it takes exactly the allocation decisions it takes on a real
 * device (the same buffer pool, scopes, checkpointing, binding windows), so the pool's peak is the memory a real
 * run would need — measured, not modelled — in seconds and without a byte of GPU memory. Like PyTorch's meta
 * tensors; `planTrainingMemory` uses it for `train --dry-run`.
 */
import type { Gpu } from "./open-device.ts";

/** A meta twin of `real`: the same adapter description, features and limits, so plans see the real limits. */
export function metaGpu(real: Gpu): Gpu {
  return {
    device: metaDevice(real.info.limits, real.info.features),
    info: real.info,
    hasFeature: real.hasFeature,
    destroy() {},
  };
}

function metaDevice(limits: Record<string, number>, features: readonly string[]): GPUDevice {
  const nothing = () => {};
  const pass = { setPipeline: nothing, setBindGroup: nothing, dispatchWorkgroups: nothing, end: nothing };
  const encoder = {
    beginComputePass: () => pass,
    copyBufferToBuffer: nothing,
    clearBuffer: nothing,
    finish: () => ({}),
  };
  const buffer = (size: number, usage: number) => ({
    size,
    usage,
    label: "",
    mapState: "unmapped",
    destroy: nothing,
    unmap: nothing,
    mapAsync: async () => {},
    getMappedRange: (offset = 0, length = size - offset) => new ArrayBuffer(length),
  });
  const device = {
    label: "meta",
    limits,
    features: new Set(features),
    lost: new Promise(nothing),
    queue: { writeBuffer: nothing, submit: nothing, onSubmittedWorkDone: async () => {} },
    createBuffer: (d: GPUBufferDescriptor) => buffer(d.size, d.usage),
    createShaderModule: () => ({}),
    createComputePipeline: () => ({ getBindGroupLayout: () => ({}) }),
    createBindGroup: () => ({}),
    createCommandEncoder: () => encoder,
    pushErrorScope: nothing,
    popErrorScope: async () => null,
    destroy: nothing,
  };
  return device as unknown as GPUDevice;
}
