// Where a cold start's shader compilation goes, kernel family by family. Record the pipelines of a workload,
// then replay them one at a time on an idle device:
//   TEXTCRAFTOR_PROFILE_COMPILE=/tmp/pipelines.json bun run cli train --steps 1 --eval-limit 0
//   MESA_SHADER_CACHE_DISABLE=true bun bench/shader-jit.ts /tmp/pipelines.json
// Each pipeline is created (WGSL parsing and translation, timed), then dispatched once with every uniform 0 (each
// kernel returns at its bounds check) and waited for: lavapipe JIT-compiles a shader at its first dispatch, so
// "first dispatch" is the JIT; a second dispatch of the same pipeline measures what a dispatch costs without it.
// Without MESA_SHADER_CACHE_DISABLE, Mesa's on-disk cache answers shaders an earlier run compiled.
import { readFileSync } from "node:fs";
import { initRuntime } from "@textcraftor/core";

const file = process.argv[2];
if (!file) throw new Error("usage: bun bench/shader-jit.ts PIPELINES.json (written by TEXTCRAFTOR_PROFILE_COMPILE)");
const pipelines: { key: string; code: string; createSeconds: number }[] = JSON.parse(readFileSync(file, "utf8"));
const { gpu } = await initRuntime();
const device = gpu.device;
const uniform = device.createBuffer({ size: 256, usage: GPUBufferUsage.UNIFORM });

/** Wall seconds and this process's CPU seconds (every thread: lavapipe's JIT runs on its queue thread). */
async function dispatch(pipeline: GPUComputePipeline, code: string): Promise<[number, number]> {
  const entries = [...code.matchAll(/@binding\((\d+)\)\s*var<(uniform|storage)/g)].map(([, binding, kind]) => ({
    binding: Number(binding),
    resource: {
      buffer: kind === "uniform" ? uniform : device.createBuffer({ size: 1024, usage: GPUBufferUsage.STORAGE }),
    },
  }));
  const start = performance.now(),
    cpu = process.cpuUsage();
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
  pass.dispatchWorkgroups(1);
  pass.end();
  device.queue.submit([encoder.finish()]);
  await device.queue.onSubmittedWorkDone();
  const { user, system } = process.cpuUsage(cpu);
  for (const e of entries) if (e.resource.buffer !== uniform) e.resource.buffer.destroy();
  return [(performance.now() - start) / 1000, (user + system) / 1e6];
}

const COLUMNS = ["pipelines", "inRun", "create", "first", "firstCpu", "second"] as const;
type Row = Record<(typeof COLUMNS)[number], number>;
const zero = (): Row => ({ pipelines: 0, inRun: 0, create: 0, first: 0, firstCpu: 0, second: 0 });
const add = (a: Row, b: Row): Row => Object.fromEntries(COLUMNS.map((c) => [c, a[c] + b[c]])) as Row;

const families = new Map<string, Row>();
const slowest: [string, number][] = [];
for (const { key, code, createSeconds } of pipelines) {
  const start = performance.now();
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module: device.createShaderModule({ code, label: key }), entryPoint: "main" },
    label: key,
  });
  const create = (performance.now() - start) / 1000;
  const [first, firstCpu] = await dispatch(pipeline, code);
  const [second] = await dispatch(pipeline, code);
  const family = key.split(/[:|]/, 1)[0]!;
  families.set(
    family,
    add(families.get(family) ?? zero(), { pipelines: 1, inRun: createSeconds, create, first, firstCpu, second }),
  );
  slowest.push([key, firstCpu]);
}

const total = [...families.values()].reduce(add, zero());
const s = (v: number) => v.toFixed(2).padStart(8);
console.log(`${gpu.info.adapter.name}; Mesa shader cache ${process.env.MESA_SHADER_CACHE_DISABLE ? "off" : "on"}`);
console.log(
  "seconds: creation in the recorded run (includes waits for queued work), creation here, the first dispatch",
);
console.log("(wall and CPU of every thread: the JIT), the second dispatch (wall: a dispatch without the JIT)");
console.log(`${"family".padEnd(32)} pipelines   in-run   create    first  1st CPU   second`);
for (const [family, r] of [["total", total] as const, ...[...families].sort((a, b) => b[1].firstCpu - a[1].firstCpu)])
  console.log(
    `${family.padEnd(32)} ${String(r.pipelines).padStart(9)} ${s(r.inRun)} ${s(r.create)} ${s(r.first)} ${s(r.firstCpu)} ${s(r.second)}`,
  );
console.log("slowest first dispatches (CPU seconds):");
for (const [key, seconds] of slowest.sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`  ${s(seconds)}  ${key}`);
