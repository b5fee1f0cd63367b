/** Run under `mpirun -np R`: each rank contributes rank+1 (and its own vector), rank 0's vector is broadcast; prints what it got. */
import { mpiEnvironment, openMpi } from "../../src/distributed/mpi.ts";

const env = mpiEnvironment();
const comm = await openMpi();
const data = Float32Array.from({ length: 5 }, (_, i) => (comm.rank + 1) * (i + 1));
comm.allreduceSum(data);
const root = Float32Array.from({ length: 3 }, () => comm.rank + 10);
comm.broadcast(root, 0);
console.log(
  JSON.stringify({ rank: comm.rank, size: comm.size, env, sum: Array.from(data), broadcast: Array.from(root) }),
);
comm.finalize();
