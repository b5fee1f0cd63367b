import { Console, Effect, Option } from "effect";
import { Command, Flag } from "effect/cli";
import { initRuntime, type Runtime } from "@textcraftor/core";
import { formatRow, runKernelBench, sdCases, smallCases } from "../bench/kernels.ts";
import { MODEL_HEADER, SD15_SIZES, SMALL_SIZES, formatModelRow, modelCases, runModelBench } from "../bench/models.ts";
import { SD15_SCALE, SMALL_SCALE, formatScaleRow, runScale } from "../bench/scale.ts";
import { SD15_TRAIN, SMALL_TRAIN, trainCases } from "../bench/training.ts";
import { deviceFlag, deviceOptions } from "../device-flag.ts";
import { attempt } from "../errors.ts";

const flags = {
  json: Flag.Boolean("json").pipe(Flag.withDescription("Print the rows as JSON; default off"), Flag.withDefault(false)),
  size: Flag.Literals("size", ["auto", "sd", "small"]).pipe(
    Flag.withDescription(
      "sd: Stable Diffusion 1.5 shapes; small: CPU-sized; auto: sd on a GPU, small on a CPU adapter; default auto",
    ),
    Flag.withDefault("auto"),
  ),
  device: deviceFlag,
};

/** Opens the device and resolves `auto`: the SD 1.5 sizes take minutes on a CPU adapter. */
const openFor = (size: "auto" | "sd" | "small", device: Option.Option<number>) =>
  attempt(() => initRuntime(deviceOptions(device))).pipe(
    Effect.map((rt) => ({ rt, useSd: size === "sd" || (size === "auto" && !rt.gpu.info.isCPU) })),
  );

const title = (rt: Runtime, sizes: string) =>
  `${rt.gpu.info.adapter.name} (${rt.gpu.info.binding}, ${rt.gpu.info.runtime} ${rt.gpu.info.runtimeVersion}), ${sizes}, ${new Date().toISOString().slice(0, 10)}`;

const kernels = Command.make(
  "kernels",
  flags,
  Effect.fn(function* ({ json, size, device }) {
    const { rt, useSd } = yield* openFor(size, device);
    if (!json)
      yield* Console.log(
        `${title(rt, useSd ? "SD 1.5 shapes" : "small shapes")}\n${"family".padEnd(10)} ${"shape".padEnd(34)} ${"median".padStart(13)}  ${"throughput".padStart(16)}  ${"peak".padStart(12)}`,
      );
    const rows = yield* attempt(() =>
      runKernelBench(useSd ? sdCases() : smallCases(), json ? undefined : (r) => console.log(formatRow(r))),
    );
    if (json)
      yield* Console.log(
        JSON.stringify(
          { adapter: rt.gpu.info.adapter.name, binding: rt.gpu.info.binding, shapes: useSd ? "sd" : "small", rows },
          null,
          2,
        ),
      );
  }),
).pipe(Command.withDescription("Time the WGSL kernels (matmul, conv2d, attention, group norm)"));

const models = Command.make(
  "models",
  flags,
  Effect.fn(function* ({ json, size, device }) {
    const { rt, useSd } = yield* openFor(size, device);
    if (!json)
      yield* Console.log(
        `${title(rt, useSd ? "SD 1.5 models" : "small models (SD 1.5 layout, tiny widths)")}, random weights\n${MODEL_HEADER}`,
      );
    const rows = yield* attempt(() =>
      runModelBench(
        modelCases(useSd ? SD15_SIZES : SMALL_SIZES),
        json ? undefined : (r) => console.log(formatModelRow(r)),
      ),
    );
    if (json)
      yield* Console.log(
        JSON.stringify(
          { adapter: rt.gpu.info.adapter.name, binding: rt.gpu.info.binding, sizes: useSd ? "sd" : "small", rows },
          null,
          2,
        ),
      );
  }),
).pipe(
  Command.withDescription("Time whole models at SD 1.5 sizes (UNet forward and backward, VAE decode, text encoder)"),
);

const training = Command.make(
  "train",
  {
    ...flags,
    batchSize: Flag.Int("batch-size").pipe(
      Flag.withDescription("Prompts per training step; default 1 at SD sizes (the paper: 4 per GPU), 2 small"),
      Flag.optional,
    ),
  },
  Effect.fn(function* ({ json, size, device, batchSize }) {
    const { rt, useSd } = yield* openFor(size, device);
    const base = useSd ? SD15_TRAIN : SMALL_TRAIN;
    const sizes = { ...base, batchSize: Option.getOrElse(batchSize, () => base.batchSize) };
    if (!json)
      yield* Console.log(
        `${title(rt, useSd ? "SD 1.5 sizes" : "small sizes (SD 1.5 layout, tiny widths)")}, random weights\n${MODEL_HEADER}`,
      );
    // Three samples: an SD-sized step takes seconds even on a large GPU.
    const rows = yield* attempt(() =>
      runModelBench(trainCases(sizes), json ? undefined : (r) => console.log(formatModelRow(r)), {
        samples: 3,
        minSampleMs: 0,
      }),
    );
    if (json)
      yield* Console.log(
        JSON.stringify(
          { adapter: rt.gpu.info.adapter.name, binding: rt.gpu.info.binding, sizes: useSd ? "sd" : "small", rows },
          null,
          2,
        ),
      );
  }),
).pipe(Command.withDescription("Time a text-to-image sample and one TextCraftor training step at SD 1.5 sizes"));

const scale = Command.make(
  "scale",
  {
    ...flags,
    dtype: Flag.Literals("dtype", ["f32", "f16"]).pipe(
      Flag.withDescription(
        "Storage of the frozen weights (UNet, VAE, original encoder, reward towers); run each in its own process, since the peak RSS is the process's; default f16",
      ),
      Flag.withDefault("f16"),
    ),
    run: Flag.Literals("run", ["plan", "unet", "step"]).pipe(
      Flag.withDescription(
        "After the memory plan (seconds, on a meta device): nothing, one real UNet call, or the real step (hours at full size on a CPU adapter); default step",
      ),
      Flag.withDefault("step"),
    ),
  },
  Effect.fn(function* ({ json, size, device, dtype, run }) {
    const { rt, useSd } = yield* openFor(size, device);
    const sizes = useSd ? SD15_SCALE : SMALL_SCALE;
    if (!json)
      yield* Console.log(
        `${title(rt, useSd ? "SD 1.5 + ViT-L/14 ×2 + ViT-H/14 ×2 at 512², batch 1" : "small sizes (the same graph, tiny widths)")}, N = ${sizes.gradSteps + 1}, K = ${sizes.gradSteps}, random weights`,
      );
    const row = yield* attempt(() => runScale(rt.gpu, sizes, dtype, run));
    yield* Console.log(
      json
        ? JSON.stringify(
            // The plan's pipeline sources (the WGSL of every kernel) are for warming up, not for the report.
            {
              adapter: rt.gpu.info.adapter.name,
              sizes: useSd ? "sd" : "small",
              ...row,
              plan: { ...row.plan, pipelines: undefined },
            },
            null,
            2,
          )
        : formatScaleRow(row),
    );
  }),
).pipe(
  Command.withDescription(
    "Memory and time of the paper's training step at full size (SD 1.5 with four reward towers), f32 or f16 frozen weights",
  ),
);

export const bench = Command.make("bench").pipe(
  Command.withDescription("Benchmarks: median times, throughput and peak memory"),
  Command.withSubcommands([kernels, models, training, scale]),
);
