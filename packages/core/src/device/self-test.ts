import { holdEncodedStrings } from "@textcraftor/webgpu-kernels/internal";
import type { Gpu } from "./open-device.ts";

/**
 * A tiny compute kernel whose output is known exactly (out[i] = 3·i + 1 as u32, for a size that is not a
 * multiple of the workgroup). Proves that kernels run and read back on this device — the null backend fails it.
 */
export async function selfTest(gpu: Gpu, n = 1000): Promise<{ ok: boolean; mismatches: number }> {
  const { device } = gpu;
  const code = /* wgsl */ `
    @group(0) @binding(0) var<storage, read_write> out: array<u32>;
    @compute @workgroup_size(64)
    fn main(@builtin(global_invocation_id) id: vec3<u32>) {
      if (id.x < arrayLength(&out)) { out[id.x] = 3u * id.x + 1u; }
    }`;
  // Strings go to the binding here: see holdEncodedStrings.
  const pipeline = holdEncodedStrings(() =>
    device.createComputePipeline({
      layout: "auto",
      compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
    }),
  );
  const out = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const read = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(
    0,
    device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: out } }],
    }),
  );
  pass.dispatchWorkgroups(Math.ceil(n / 64));
  pass.end();
  encoder.copyBufferToBuffer(out, 0, read, 0, n * 4);
  device.queue.submit([encoder.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const values = new Uint32Array(read.getMappedRange().slice(0));
  read.unmap();
  out.destroy();
  read.destroy();
  let mismatches = 0;
  for (let i = 0; i < n; i++) if (values[i] !== 3 * i + 1) mismatches++;
  return { ok: mismatches === 0, mismatches };
}
