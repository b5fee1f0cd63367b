/**
 * Open MPI from Bun through bun:ffi: the few calls data-parallel training needs (init, rank and size, an
 * all-reduce of f32 sums, a broadcast, abort), on the engine clusters already run (`mpirun`, Slurm's
 * `srun --mpi=pmix`, the MPI Operator's MPIJob).
 *
 * Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM) are addresses of data symbols, which bun:ffi cannot
 * name, so they come from the C library's dlsym. libmpi is first opened with RTLD_GLOBAL: Open MPI loads its
 * components as plugins that expect libmpi's symbols to be global.
 */

import type { Pointer } from "bun:ffi";

/** The world as the launcher describes it, read from its environment: null when not started by an MPI launcher. */
export interface MpiEnvironment {
  rank: number;
  size: number;
  localRank: number;
}

export function mpiEnvironment(env: Record<string, string | undefined> = process.env): MpiEnvironment | null {
  const read = (...names: string[]) => {
    for (const n of names) if (env[n] !== undefined && env[n] !== "") return Number(env[n]);
    return undefined;
  };
  const size = read("OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "SLURM_NTASKS");
  const rank = read("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID");
  if (size === undefined || rank === undefined) return null;
  return { rank, size, localRank: read("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID") ?? rank };
}

export interface Communicator {
  readonly rank: number;
  readonly size: number;
  /** Sums `data` over all ranks, in place (MPI_Allreduce with MPI_IN_PLACE, MPI_SUM, MPI_FLOAT). */
  allreduceSum(data: Float32Array): void;
  /** `root`'s `data` into every rank's `data`. */
  broadcast(data: Float32Array, root?: number): void;
  barrier(): void;
  /** Ends every rank of the job at once with `code` (a failing rank must not leave the others waiting). */
  abort(code: number): never;
  finalize(): void;
}

const LIBRARIES = ["libmpi.so.40", "libmpi.so", "libmpi.dylib"];
const BUN_FFI = "bun:ffi";
const RTLD_NOW = 2,
  RTLD_GLOBAL = 0x100;
/** Open MPI's MPI_IN_PLACE is the address 1. */
const IN_PLACE = 1 as Pointer;

export class MpiError extends Error {}

/** MPI_Init on Open MPI's library; refuses with what to install when the library is missing. */
export async function openMpi({
  libraries = LIBRARIES,
}: {
  libraries?: readonly string[];
} = {}): Promise<Communicator> {
  // A specifier in a variable: bundles of the core for Node, Deno or browsers must neither load nor resolve bun:ffi.
  const { dlopen, FFIType, ptr } = (await import(BUN_FFI)) as typeof import("bun:ffi");
  const libc = dlopen("libc.so.6", {
    dlopen: { args: [FFIType.cstring, FFIType.i32], returns: FFIType.ptr },
    dlsym: { args: [FFIType.ptr, FFIType.cstring], returns: FFIType.ptr },
  });
  const cstr = (s: string) => ptr(Buffer.from(`${s}\0`));
  let path: string | undefined,
    handle: Pointer | null = null;
  for (const name of libraries) {
    handle = libc.symbols.dlopen(cstr(name), RTLD_NOW | RTLD_GLOBAL) as Pointer | null;
    if (handle) {
      path = name;
      break;
    }
  }
  if (!handle || !path) {
    throw new MpiError(
      "started under an MPI launcher, but Open MPI's library (libmpi.so.40) is not installed: " +
        "install it (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi3; `bash scripts/setup.sh` does) or run without mpirun",
    );
  }
  const symbol = (name: string) => {
    const address = libc.symbols.dlsym(handle, cstr(name)) as Pointer | null;
    if (!address) throw new MpiError(`${path} has no ${name}: only Open MPI is supported`);
    return address;
  };
  const world = symbol("ompi_mpi_comm_world"),
    float = symbol("ompi_mpi_float"),
    sum = symbol("ompi_mpi_op_sum");
  const mpi = dlopen(path, {
    MPI_Init: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    MPI_Comm_rank: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    MPI_Comm_size: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    MPI_Allreduce: {
      args: [FFIType.ptr, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.ptr],
      returns: FFIType.i32,
    },
    MPI_Bcast: { args: [FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
    MPI_Barrier: { args: [FFIType.ptr], returns: FFIType.i32 },
    MPI_Abort: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    MPI_Finalize: { args: [], returns: FFIType.i32 },
  }).symbols;
  const check = (what: string, code: number) => {
    if (code !== 0) throw new MpiError(`${what} failed with MPI error ${code}`);
  };
  check("MPI_Init", mpi.MPI_Init(null, null));
  const out = new Int32Array(1);
  check("MPI_Comm_rank", mpi.MPI_Comm_rank(world, ptr(out)));
  const rank = out[0]!;
  check("MPI_Comm_size", mpi.MPI_Comm_size(world, ptr(out)));
  const size = out[0]!;
  // Counts are C ints: larger arrays go in chunks.
  const CHUNK = 1 << 30;
  const chunks = (data: Float32Array, fn: (part: Float32Array) => void) => {
    for (let i = 0; i < data.length; i += CHUNK) fn(data.subarray(i, Math.min(data.length, i + CHUNK)));
  };
  return {
    rank,
    size,
    allreduceSum: (data) =>
      chunks(data, (part) =>
        check("MPI_Allreduce", mpi.MPI_Allreduce(IN_PLACE, ptr(part), part.length, float, sum, world)),
      ),
    broadcast: (data, root = 0) =>
      chunks(data, (part) => check("MPI_Bcast", mpi.MPI_Bcast(ptr(part), part.length, float, root, world))),
    barrier: () => check("MPI_Barrier", mpi.MPI_Barrier(world)),
    abort(code) {
      mpi.MPI_Abort(world, code);
      process.exit(code);
    },
    finalize: () => check("MPI_Finalize", mpi.MPI_Finalize()),
  };
}
