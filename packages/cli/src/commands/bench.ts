import { Console, Effect } from "effect";
import { Command, Flag } from "effect/cli";
import { initRuntime } from "@textcraftor/core";
import { formatRow, runKernelBench, sdCases, smallCases } from "../bench/kernels.ts";
import { tryGpu } from "../errors.ts";

const kernels = Command.make(
  "kernels",
  {
    json: Flag.Boolean("json").pipe(Flag.withDescription("Print the rows as JSON"), Flag.withDefault(false)),
    size: Flag.Literals("size", ["auto", "sd", "small"]).pipe(
      Flag.withDescription("sd: Stable Diffusion 1.5 shapes; small: CPU-sized; auto: sd on a GPU, small on a CPU adapter"),
      Flag.withDefault("auto"),
    ),
  },
  Effect.fn(function* ({ json, size }) {
    const rt = yield* tryGpu(() => initRuntime());
    const useSd = size === "sd" || (size === "auto" && !rt.gpu.info.isCPU);
    const header = `${rt.gpu.info.adapter.name} (${rt.gpu.info.binding}, ${rt.gpu.info.runtime} ${rt.gpu.info.runtimeVersion}), ${useSd ? "SD 1.5" : "small"} shapes, ${new Date().toISOString().slice(0, 10)}`;
    if (!json) yield* Console.log(`${header}\n${"family".padEnd(10)} ${"shape".padEnd(34)} ${"median".padStart(13)}  ${"throughput".padStart(16)}  ${"peak".padStart(12)}`);
    const rows = yield* tryGpu(() => runKernelBench(useSd ? sdCases() : smallCases(), json ? undefined : (r) => console.log(formatRow(r))));
    if (json) yield* Console.log(JSON.stringify({ adapter: rt.gpu.info.adapter.name, binding: rt.gpu.info.binding, shapes: useSd ? "sd" : "small", rows }, null, 2));
  }),
).pipe(Command.withDescription("Time the WGSL kernels (matmul, conv2d, attention, group norm)"));

export const bench = Command.make("bench").pipe(
  Command.withDescription("Benchmarks: median times, throughput and peak memory"),
  Command.withSubcommands([kernels]),
);
