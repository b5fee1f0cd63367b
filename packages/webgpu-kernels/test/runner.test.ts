import { expect, test } from "bun:test";
import { KernelRunner } from "../src/runner.ts";
import { getRunner, download, upload } from "./helpers.ts";

test("bind groups are released after their batch is submitted, and layouts are fetched once per pipeline", async () => {
  const base = await getRunner();
  const created: { destroyed: boolean }[] = [];
  let layoutCalls = 0;
  // A device whose bind groups count their release (bun-webgpu frees them only through destroy()).
  const device = new Proxy(base.device, {
    get(target, key) {
      if (key === "createBindGroup") return (d: GPUBindGroupDescriptor) => {
        const group = target.createBindGroup(d) as GPUBindGroup & { destroy?: () => void };
        const record = { destroyed: false };
        created.push(record);
        const inner = group.destroy?.bind(group);
        return Object.assign(Object.create(Object.getPrototypeOf(group)), group, { destroy: () => { record.destroyed = true; inner?.(); } });
      };
      if (key === "createComputePipeline") return (d: GPUComputePipelineDescriptor) => {
        const pipeline = target.createComputePipeline(d);
        const get = pipeline.getBindGroupLayout.bind(pipeline);
        return new Proxy(pipeline, { get: (p, k) => (k === "getBindGroupLayout" ? (i: number) => (layoutCalls++, get(i)) : Reflect.get(p, k)) });
      };
      const value = Reflect.get(target, key);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const r = new KernelRunner(device, base.limits, base.features);
  const buf = upload(r, Float32Array.of(1, 2, 3, 4));
  const wgsl = () => `@group(0) @binding(0) var<storage, read_write> x: array<f32>;
    @compute @workgroup_size(4) fn main(@builtin(local_invocation_index) i: u32) { x[i] = x[i] * 2.0; }`;
  for (let k = 0; k < 3; k++) r.run({ key: "double", wgsl, buffers: [buf], workgroups: 1 });
  expect(created.every((g) => !g.destroyed)).toBe(true);
  expect(Array.from(await download(r, buf, 4))).toEqual([8, 16, 24, 32]);
  expect(created).toHaveLength(3);
  expect(created.every((g) => g.destroyed)).toBe(true);
  expect(layoutCalls).toBe(1);
});

test("a buffer over the adapter's storage binding limit is refused before dispatch, naming both sizes", async () => {
  const base = await getRunner();
  const r = new KernelRunner(base.device, { ...base.limits, maxStorageBufferBindingSize: 2 ** 20 }, base.features);
  const big = upload(r, new Float32Array(2 ** 18 + 64)); // 1 MiB + 256 bytes
  const wgsl = () => `@group(0) @binding(0) var<storage, read_write> x: array<f32>;
    @compute @workgroup_size(1) fn main() { x[0] = 1.0; }`;
  expect(() => r.run({ key: "touch", wgsl, buffers: [big], workgroups: 1 })).toThrow("touch: a 1.0 MiB (1048832 bytes) buffer exceeds this adapter's storage binding limit of 1.0 MiB (1048576 bytes)");
  const fits = upload(r, new Float32Array(2 ** 18));
  r.run({ key: "touch", wgsl, buffers: [fits], workgroups: 1 });
  expect((await download(r, fits, 1))[0]).toBe(1);
});
