/** Open MPI through bun:ffi: the launcher's environment, and a real all-reduce and broadcast between two ranks under mpirun. */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { mpiEnvironment, openMpi } from "../src/distributed/mpi.ts";

test("the rank and size come from Open MPI's, PMIx's or Slurm's environment, and nothing without a launcher", () => {
  expect(mpiEnvironment({})).toBeNull();
  expect(
    mpiEnvironment({ OMPI_COMM_WORLD_SIZE: "4", OMPI_COMM_WORLD_RANK: "2", OMPI_COMM_WORLD_LOCAL_RANK: "0" }),
  ).toEqual({ rank: 2, size: 4, localRank: 0 });
  expect(mpiEnvironment({ PMIX_SIZE: "8", PMIX_RANK: "5" })).toEqual({ rank: 5, size: 8, localRank: 5 });
  expect(mpiEnvironment({ SLURM_NTASKS: "2", SLURM_PROCID: "1", SLURM_LOCALID: "1" })).toEqual({
    rank: 1,
    size: 2,
    localRank: 1,
  });
});

test("two ranks under mpirun sum their vectors and receive rank 0's broadcast", () => {
  const p = Bun.spawnSync(
    ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", "bun", join(import.meta.dir, "mpi/allreduce.ts")],
    { env: process.env },
  );
  const out = p.stdout.toString();
  expect(p.exitCode, p.stderr.toString() + out).toBe(0);
  const ranks = out
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l))
    .sort((a, b) => a.rank - b.rank);
  expect(ranks.map((r) => [r.rank, r.size, r.env.rank, r.env.size])).toEqual([
    [0, 2, 0, 2],
    [1, 2, 1, 2],
  ]);
  // Rank r contributed (r + 1)·(i + 1): the sum over two ranks is 3·(i + 1) on both.
  for (const r of ranks) {
    expect(r.sum).toEqual([3, 6, 9, 12, 15]);
    expect(r.broadcast).toEqual([10, 10, 10]);
  }
}, 120_000);

test("without Open MPI's library the error names the packages to install", async () => {
  await expect(openMpi({ libraries: ["libmpi-not-here.so.40"] })).rejects.toThrow(
    "Open MPI's library (libmpi.so.40) is not installed: install it (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi3",
  );
});
