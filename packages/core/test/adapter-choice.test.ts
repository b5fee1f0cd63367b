/** Which adapter a process takes: the index's parsing, its sources in order, the MPI local-rank default, the errors. */
import { describe, expect, test } from "bun:test";
import {
  chooseAdapterIndex,
  deviceRequest,
  ONE_GPU_PER_PROCESS,
  parseDeviceIndex,
  type AdapterEntry,
} from "../src/device/adapter-choice.ts";
import { dawnNodeAdapterFlag, parseDawnNodeAdapterList } from "../src/device/dawn-node-adapters.ts";
import { DeviceError } from "../src/device/device-error.ts";

const gpu = (name: string): AdapterEntry => ({ name, vendor: "nvidia", backend: "vulkan", kind: "gpu" });
const lavapipe: AdapterEntry = { name: "llvmpipe", vendor: "mesa", backend: "vulkan", kind: "cpu" };
const eightGpus = Array.from({ length: 8 }, () => gpu("NVIDIA H200"));
const envOf = (vars: Record<string, string>) => (name: string) => vars[name];

describe("parseDeviceIndex", () => {
  test("whole numbers >= 0, spaces allowed", () => {
    expect(parseDeviceIndex("3", "TEXTCRAFTOR_DEVICE")).toBe(3);
    expect(parseDeviceIndex(" 0 ", "TEXTCRAFTOR_DEVICE")).toBe(0);
  });
  test("anything else names its source and what to give", () => {
    for (const bad of ["-1", "1.5", "gpu0", "cuda:1", " "])
      expect(() => parseDeviceIndex(bad, "TEXTCRAFTOR_DEVICE")).toThrow(
        `TEXTCRAFTOR_DEVICE is "${bad}": give an adapter index (0, 1, …)`,
      );
  });
});

describe("deviceRequest: --device, then TEXTCRAFTOR_DEVICE, then the MPI local rank", () => {
  const mpi = { OMPI_COMM_WORLD_SIZE: "8", OMPI_COMM_WORLD_RANK: "13", OMPI_COMM_WORLD_LOCAL_RANK: "5" };
  test("the option wins over the environment and the launcher", () => {
    expect(deviceRequest(2, envOf({ ...mpi, TEXTCRAFTOR_DEVICE: "1" }))).toEqual({ index: 2, from: "--device" });
    expect(() => deviceRequest(-1, envOf({}))).toThrow("--device -1: give an adapter index");
  });
  test("the variable wins over the launcher; an empty one counts as unset", () => {
    expect(deviceRequest(undefined, envOf({ ...mpi, TEXTCRAFTOR_DEVICE: "1" }))).toEqual({
      index: 1,
      from: "TEXTCRAFTOR_DEVICE",
    });
    expect(deviceRequest(undefined, envOf({ ...mpi, TEXTCRAFTOR_DEVICE: "" }))).toEqual({
      localRank: 5,
      from: "the MPI local rank",
    });
  });
  test("the local rank of Open MPI, Slurm and MPICH-style launchers; none outside a launcher", () => {
    expect(deviceRequest(undefined, envOf(mpi))).toMatchObject({ localRank: 5 });
    expect(
      deviceRequest(undefined, envOf({ SLURM_NTASKS: "16", SLURM_PROCID: "9", SLURM_LOCALID: "1" })),
    ).toMatchObject({ localRank: 1 });
    expect(deviceRequest(undefined, envOf({ PMI_SIZE: "4", PMI_RANK: "3", MPI_LOCALRANKID: "3" }))).toMatchObject({
      localRank: 3,
    });
    expect(deviceRequest(undefined, envOf({ PATH: "/usr/bin" }))).toBeUndefined();
  });
});

describe("chooseAdapterIndex", () => {
  test("mpirun -np 8 on an 8-GPU node puts local rank i on GPU i; more ranks wrap around", () => {
    const picks = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map(
      (localRank) => chooseAdapterIndex(eightGpus, { localRank, from: "the MPI local rank" }, "bun-webgpu").index,
    );
    expect(picks).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 0, 1]);
  });
  test("ranks share out the GPUs, not a CPU driver listed beside them; without GPUs, whatever there is", () => {
    const mixed = [gpu("A"), lavapipe, gpu("B")];
    const pick = (list: AdapterEntry[], localRank: number) =>
      chooseAdapterIndex(list, { localRank, from: "the MPI local rank" }, "bun-webgpu").index;
    expect([0, 1, 2, 3].map((r) => pick(mixed, r))).toEqual([0, 2, 0, 2]);
    expect([0, 1].map((r) => pick([lavapipe], r))).toEqual([0, 0]);
  });
  test("an explicit index in range is taken as it is, even a CPU driver", () => {
    expect(chooseAdapterIndex([gpu("A"), lavapipe], { index: 1, from: "--device" }, "bun-webgpu").index).toBe(1);
  });
  test("out of range: a DeviceError listing every adapter with its index, name and vendor, and how to choose", () => {
    const list = [gpu("NVIDIA H200"), lavapipe];
    let error: unknown;
    try {
      chooseAdapterIndex(list, { index: 7, from: "TEXTCRAFTOR_DEVICE" }, "bun-webgpu");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DeviceError);
    const message = (error as Error).message;
    expect(message).toStartWith("TEXTCRAFTOR_DEVICE 7: there are 2 adapters (bun-webgpu):\n");
    expect(message).toContain("   0  NVIDIA H200 (nvidia, vulkan, GPU)\n");
    expect(message).toContain("   1  llvmpipe (mesa, vulkan, CPU driver)\n");
    expect(message).toContain("Choose one with --device N or TEXTCRAFTOR_DEVICE=N");
  });
  test("a binding that shows only its own choice: index 0 and any local rank take it, index 1 is refused", () => {
    expect(chooseAdapterIndex(null, { index: 0, from: "--device" }, "navigator.gpu").index).toBe(0);
    expect(chooseAdapterIndex(null, { localRank: 5, from: "the MPI local rank" }, "navigator.gpu").index).toBe(0);
    expect(() => chooseAdapterIndex(null, { index: 1, from: "--device" }, "navigator.gpu")).toThrow(
      `--device 1: navigator.gpu shows only the adapter it picks itself, so it cannot choose among GPUs.\n${ONE_GPU_PER_PROCESS}`,
    );
  });
});

describe("dawn.node's adapters", () => {
  test("its list comes from the error for a name no adapter has", () => {
    const message =
      "no suitable backends found\nAvailable adapters:\n * backend: 'vulkan', name: 'NVIDIA H200'\n * backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)'\n";
    expect(parseDawnNodeAdapterList(message)).toEqual([
      { backend: "vulkan", name: "NVIDIA H200" },
      { backend: "vulkan", name: "llvmpipe (LLVM 15.0.6, 256 bits)" },
    ]);
  });
  test("it picks the first name containing the flag's: an adapter named like an earlier one is unreachable", () => {
    expect(dawnNodeAdapterFlag(["NVIDIA A100", "NVIDIA A100 80GB"], 1)).toBe("adapter=NVIDIA A100 80GB");
    expect(dawnNodeAdapterFlag(["NVIDIA A100 80GB", "NVIDIA A100"], 1)).toBeNull();
    expect(dawnNodeAdapterFlag(["NVIDIA H200", "NVIDIA H200"], 0)).toBe("adapter=NVIDIA H200");
    expect(dawnNodeAdapterFlag(["NVIDIA H200", "NVIDIA H200"], 1)).toBeNull();
  });
});
