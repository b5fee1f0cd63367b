// Kernel benchmark without the CLI's dependencies (for the GPU machine, where only a node_modules subset travels).
//   bun bench/kernels-json.ts [sd|small] > kernels.json
import { initRuntime } from "@textcraftor/core";
import { runKernelBench, sdCases, smallCases } from "../packages/cli/src/bench/kernels.ts";
import { ourThreads } from "../packages/cli/src/bench/threads.ts";

const size = process.argv[2] ?? "sd";
const rt = await initRuntime();
const rows = await runKernelBench(size === "sd" ? sdCases() : smallCases(), (r) =>
  console.error(`${r.family} ${r.shape}: ${r.medianMs.toFixed(3)} ms`),
);
console.log(
  JSON.stringify(
    {
      adapter: rt.gpu.info.adapter.name,
      binding: rt.gpu.info.binding,
      shapes: size,
      threads: ourThreads(rt),
      date: new Date().toISOString(),
      rows,
    },
    null,
    2,
  ),
);
