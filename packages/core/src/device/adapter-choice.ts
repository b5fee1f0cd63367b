/**
 * Which adapter a process takes on a machine with several: `--device N` (the `device` option), else
 * TEXTCRAFTOR_DEVICE=N, else under an MPI launcher the process's local rank modulo the adapters found (so
 * `mpirun -np 8` on an 8-GPU node puts local rank i on adapter i), else the binding's own choice. An index counts
 * the adapters the binding enumerates, in its order, with Dawn's null backend left out (it computes nothing).
 */
import { mpiEnvironment } from "../distributed/mpi.ts";
import type { AdapterKind } from "./classify.ts";
import { DeviceError } from "./device-error.ts";

export interface AdapterEntry {
  name: string;
  vendor: string;
  backend: string;
  kind: Exclude<AdapterKind, "null">;
}

export type DeviceRequest =
  | { index: number; from: "--device" | "TEXTCRAFTOR_DEVICE" }
  | { localRank: number; from: "the MPI local rank" };

/** How to give each process its own GPU from outside, for bindings that only ever see the adapter they pick. */
export const ONE_GPU_PER_PROCESS =
  "Give each process one visible GPU instead: Kubernetes one `nvidia.com/gpu` per container, Docker " +
  "`--gpus device=N` (NVIDIA_VISIBLE_DEVICES under the NVIDIA container runtime), Slurm `--gpus-per-task=1` with " +
  "ConstrainDevices=yes in cgroup.conf. CUDA_VISIBLE_DEVICES does not reach Vulkan; Mesa's MESA_VK_DEVICE_SELECT " +
  "picks by vendor:device id, so not among identical GPUs.";

/** A device index as typed by the user: a whole number >= 0, or an error naming where it came from. */
export function parseDeviceIndex(text: string, from: string): number {
  const t = text.trim();
  if (!/^\d+$/.test(t))
    throw new RangeError(
      `${from} is "${text}": give an adapter index (0, 1, …) as \`bun run cli info\` lists them, or unset it`,
    );
  return Number(t);
}

/** The request from the option, the environment and the MPI launcher, in that order; undefined: the binding's choice. */
export function deviceRequest(
  option: number | undefined,
  env: (name: string) => string | undefined,
): DeviceRequest | undefined {
  if (option !== undefined) {
    if (!Number.isInteger(option) || option < 0)
      throw new RangeError(`--device ${option}: give an adapter index (0, 1, …) as \`bun run cli info\` lists them`);
    return { index: option, from: "--device" };
  }
  const fromEnv = env("TEXTCRAFTOR_DEVICE");
  if (fromEnv !== undefined && fromEnv !== "")
    return { index: parseDeviceIndex(fromEnv, "TEXTCRAFTOR_DEVICE"), from: "TEXTCRAFTOR_DEVICE" };
  const world = mpiEnvironment(new Proxy({}, { get: (_, name) => (typeof name === "string" ? env(name) : undefined) }));
  if (world && Number.isInteger(world.localRank) && world.localRank >= 0)
    return { localRank: world.localRank, from: "the MPI local rank" };
  return undefined;
}

/**
 * The index in `adapters` the request picks. `adapters` null: the binding cannot enumerate and shows one
 * adapter, its own choice, as index 0. Out of range: an error listing what there is and how to choose.
 */
export function chooseAdapterIndex(
  adapters: readonly AdapterEntry[] | null,
  request: DeviceRequest,
  binding: string,
): { index: number } {
  const count = adapters?.length ?? 1;
  if ("localRank" in request) {
    // Ranks share out the GPUs; a CPU driver or fallback listed beside them is no rank's device.
    const all = Array.from({ length: count }, (_, i) => i);
    const gpus = adapters ? all.filter((i) => adapters[i]!.kind === "gpu") : [];
    const pool = gpus.length ? gpus : all;
    return { index: pool[request.localRank % pool.length]! };
  }
  if (request.index < count) return { index: request.index };
  if (!adapters)
    throw new DeviceError(
      `${request.from} ${request.index}: ${binding} shows only the adapter it picks itself, so it cannot choose among GPUs.`,
      ONE_GPU_PER_PROCESS,
    );
  throw new DeviceError(
    `${request.from} ${request.index}: there ${count === 1 ? "is 1 adapter" : `are ${count} adapters`} (${binding}):\n${formatAdapters(adapters)}`,
    "Choose one with --device N or TEXTCRAFTOR_DEVICE=N (under an MPI launcher the default is the local rank, modulo the GPUs found).",
  );
}

/** One line per adapter: index, name, vendor, backend, kind; `chosen` marked. */
export function formatAdapters(adapters: readonly AdapterEntry[], chosen?: number): string {
  return adapters
    .map(
      (a, i) =>
        `  ${String(i).padStart(2)}  ${a.name} (${[a.vendor || "?", a.backend, a.kind === "gpu" ? "GPU" : a.kind === "cpu" ? "CPU driver" : "software fallback"].join(", ")})${i === chosen ? "  ← in use" : ""}`,
    )
    .join("\n");
}
