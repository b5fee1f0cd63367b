import { expect, test } from "bun:test";
import { unary } from "../src/elementwise.ts";
import { KernelRunner } from "../src/runner.ts";
import { getRunner, download, empty, upload } from "./helpers.ts";

test("bind groups are released after their batch is submitted, and layouts are fetched once per pipeline", async () => {
  const base = await getRunner();
  const created: { destroyed: boolean }[] = [];
  let layoutCalls = 0;
  // A device whose bind groups count their release (bun-webgpu frees them only through destroy()).
  const device = new Proxy(base.device, {
    get(target, key) {
      if (key === "createBindGroup")
        return (d: GPUBindGroupDescriptor) => {
          const group = target.createBindGroup(d) as GPUBindGroup & { destroy?: () => void };
          const record = { destroyed: false };
          created.push(record);
          const inner = group.destroy?.bind(group);
          return Object.assign(Object.create(Object.getPrototypeOf(group)), group, {
            destroy: () => {
              record.destroyed = true;
              inner?.();
            },
          });
        };
      if (key === "createComputePipeline")
        return (d: GPUComputePipelineDescriptor) => {
          const pipeline = target.createComputePipeline(d);
          const get = pipeline.getBindGroupLayout.bind(pipeline);
          return new Proxy(pipeline, {
            get: (p, k) => (k === "getBindGroupLayout" ? (i: number) => (layoutCalls++, get(i)) : Reflect.get(p, k)),
          });
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

test("a buffer over the adapter's storage binding limit is bound in windows, and too many windows are refused naming the sizes", async () => {
  const base = await getRunner();
  const r = new KernelRunner(
    base.device,
    { ...base.limits, maxStorageBufferBindingSize: 2 ** 20, maxStorageBuffersPerShaderStage: 3 },
    base.features,
  );
  const n = 2 ** 18 + 64; // 1 MiB + 256 bytes: two windows
  const big = upload(
    r,
    Float32Array.from({ length: n }, (_, i) => i % 1000),
  );
  const wgsl = () => `@group(0) @binding(0) var<storage, read_write> x: array<f32>;
    @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) { let i = g.x; if (i < ${n}u) { x[i] += 1.0; } }`;
  r.run({ key: "touch", wgsl, buffers: [big], workgroups: Math.ceil(n / 64) });
  const out = await download(r, big, n);
  expect(out[0]).toBe(1);
  expect(out[2 ** 18 - 1]).toBe(((2 ** 18 - 1) % 1000) + 1);
  expect(out[2 ** 18]).toBe((2 ** 18 % 1000) + 1);
  expect(out[n - 1]).toBe(((n - 1) % 1000) + 1);
  const other = upload(r, new Float32Array(n));
  const two =
    () => `@group(0) @binding(0) var<storage, read> x: array<f32>; @group(0) @binding(1) var<storage, read_write> y: array<f32>;
    @compute @workgroup_size(1) fn main() { y[0] = x[0]; }`;
  expect(() => r.run({ key: "copy", wgsl: two, buffers: [big, other], workgroups: 1 })).toThrow(
    "copy: its buffers (1.0 MiB, 1.0 MiB) need 4 storage bindings of at most 1.0 MiB, but this adapter allows 3 per kernel",
  );
});

test("pipelineSources lists each pipeline once, with the WGSL it was created from (rewritten where bound in windows)", async () => {
  const base = await getRunner();
  const r = new KernelRunner(base.device, { ...base.limits, maxStorageBufferBindingSize: 1024 }, base.features);
  const wgsl = () => `@group(0) @binding(0) var<storage, read_write> x: array<f32>;
    @compute @workgroup_size(4) fn main(@builtin(local_invocation_index) i: u32) { x[i] += 1.0; }`;
  const small = upload(r, new Float32Array(4)),
    big = upload(r, new Float32Array(512)); // 2 KiB: two 1 KiB windows
  for (const buffer of [small, small, big]) r.run({ key: "increment", wgsl, buffers: [buffer], workgroups: 1 });
  r.flush();
  const sources = r.pipelineSources();
  expect(sources.map((s) => s.key)).toEqual(["increment", "increment|0:2x1024"]);
  expect(sources[0]!.code).toBe(wgsl());
  expect(sources[1]!.code).toContain("x_load");
  for (const s of sources) expect(s.createSeconds).toBeGreaterThan(0);
});

test("warmUp creates another runner's pipelines, dispatches each once harmlessly, and run() then reuses them", async () => {
  const gpu = await getRunner();
  const source = new KernelRunner(gpu.device, gpu.limits, [...gpu.features]);
  const x = upload(source, Float32Array.of(1, 2, 3, 4, 5)),
    y = empty(source, 5);
  const launch = (r: KernelRunner) => unary(r, "exp", x, y, 5);
  launch(source);
  const sources = source.pipelineSources();
  const fresh = new KernelRunner(gpu.device, gpu.limits, [...gpu.features]);
  expect(fresh.warmUp(sources)).toBe(sources.length);
  expect(fresh.warmUp(sources)).toBe(0);
  const warmed = fresh.pipelineSources();
  launch(fresh);
  expect(fresh.pipelineSources()).toEqual(warmed);
  expect([...(await download(fresh, y, 5))].map((v) => Math.log(v))).toEqual(
    [1, 2, 3, 4, 5].map((v) => expect.closeTo(v, 5)),
  );
});
