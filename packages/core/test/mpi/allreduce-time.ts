/** Under mpirun: the median time of an in-place f32 all-reduce of N values (default: SD 1.5's text encoder, 123.06 M). */
import { openMpi } from "../../src/distributed/mpi.ts";

const n = Number(process.argv[2] ?? 123_060_480);
const comm = await openMpi();
const data = new Float32Array(n).fill(comm.rank + 1);
const times: number[] = [];
for (let i = 0; i < 5; i++) {
  comm.barrier();
  const t = performance.now();
  comm.allreduceSum(data);
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
if (comm.rank === 0) console.log(JSON.stringify({ values: n, bytes: n * 4, ranks: comm.size, medianMs: times[2] }));
comm.finalize();
