import { Console, Effect } from "effect";
import { Command, Flag } from "effect/cli";
import {
  formatAdapters,
  kernelFamily,
  listAdapters,
  openDevice,
  selfTest,
  type AdapterEntry,
  type DeviceInfo,
  type KernelFamily,
} from "@textcraftor/core";
import { deviceFlag, deviceOptions } from "../device-flag.ts";
import { attempt } from "../errors.ts";

/** Limits that decide kernel variants and model sizes; `--json` prints all of them. */
const KEY_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
];

const bytes = (n: number) => (n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(0)} MiB` : `${(n / 1024).toFixed(0)} KiB`);

export function formatInfo(
  info: DeviceInfo,
  check: { ok: boolean; mismatches: number },
  kernels: KernelFamily,
  adapters: AdapterEntry[] | null,
): string {
  const a = info.adapter;
  const lines = [
    `runtime   ${info.runtime} ${info.runtimeVersion}`,
    `binding   ${info.binding}`,
    `adapter   ${a.name}${info.adapterIndex === null ? "" : ` (index ${info.adapterIndex}, from ${info.chosenBy})`}`,
    `kind      ${info.isCPU ? "CPU (software Vulkan driver: correct but slow)" : info.kind.toUpperCase()}`,
    `vendor    ${a.vendor || "?"} / ${a.architecture || "?"} / ${a.device || "?"}`,
    ...(a.subgroupMinSize ? [`subgroups ${a.subgroupMinSize}–${a.subgroupMaxSize}`] : []),
    `features  ${info.features.join(", ") || "(none)"}`,
    ...KEY_LIMITS.map((k) => {
      const v = info.limits[k];
      return `  ${k.padEnd(36)} ${v === undefined ? "?" : /Size$/.test(k) ? bytes(v) : v}`;
    }),
    `kernels   ${kernels === "cpu" ? "CPU-driver variants (no workgroup barriers)" : "tiled GPU variants"}; TEXTCRAFTOR_KERNELS=gpu|cpu overrides`,
    ...precisionLines(info),
    `self-test ${check.ok ? "passed" : `FAILED (${check.mismatches} wrong values)`}`,
    ...adapterLines(info, adapters),
  ];
  return lines.join("\n");
}

/** Every adapter with the index `--device` takes, or why this binding cannot choose. */
function adapterLines(info: DeviceInfo, adapters: AdapterEntry[] | null): string[] {
  if (!adapters)
    return [
      `adapters  ${info.binding} shows only the adapter it picks itself (index 0): choose a GPU per process from outside (one visible GPU each)`,
    ];
  // Without a choice the binding takes Dawn's first: index 0.
  const inUse = info.adapterIndex ?? 0;
  return [
    "adapters  --device N or TEXTCRAFTOR_DEVICE=N chooses; under mpirun/srun the default is the local rank",
    formatAdapters(adapters, inUse),
  ];
}

/** What precision paths this adapter offers, and how tensors past one binding are handled. */
export function precisionLines(info: DeviceInfo): string[] {
  const f16 = info.features.includes("shader-f16");
  const nvidiaUnderBun = !f16 && /nvidia/i.test(info.adapter.vendor ?? "") && info.runtime !== "node";
  const window = info.limits.maxStorageBufferBindingSize,
    slots = info.limits.maxStorageBuffersPerShaderStage;
  return [
    `precision f32 math everywhere; f16 weights (--mixed-precision fp16) read ${f16 ? "as f16 (shader-f16)" : "through unpack2x16float (no shader-f16)"}` +
      (nvidiaUnderBun ? "; Dawn hides shader-f16 on NVIDIA unless run under Node, which enables it" : ""),
    `tensors   past ${window === undefined ? "one binding" : bytes(window)} are bound in windows (at most ${slots ?? "?"} storage bindings per kernel)`,
  ];
}

export const info = Command.make(
  "info",
  {
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("Print everything as JSON; default off"),
      Flag.withDefault(false),
    ),
    device: deviceFlag,
  },
  Effect.fn(function* ({ json, device }) {
    const gpu = yield* attempt(() => openDevice(deviceOptions(device)));
    const check = yield* attempt(() => selfTest(gpu));
    const kernels = yield* attempt(async () => kernelFamily(gpu));
    const { adapters } = yield* attempt(() => listAdapters());
    yield* Console.log(
      json
        ? JSON.stringify({ ...gpu.info, kernels, selfTest: check, adapters }, null, 2)
        : formatInfo(gpu.info, check, kernels, adapters),
    );
    gpu.destroy();
  }),
).pipe(
  Command.withDescription("Show the WebGPU runtime, binding, adapter, features and limits, and run a self-test kernel"),
);
