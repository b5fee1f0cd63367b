/**
 * Data parallelism over MPI ranks: every rank holds the same weights, computes the gradients of its share of the
 * step's global batch, and the shares are summed with one all-reduce from host memory (a bucket of every gradient),
 * so each rank applies the same update. Weights start identical by a broadcast from rank 0.
 */
import { runtime } from "../tensor/runtime.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Communicator } from "./mpi.ts";

/** Concatenates `tensors` on the host, all-reduces (sum) or broadcasts the bucket, and writes each slice back. */
async function exchange(tensors: Tensor[], op: (bucket: Float32Array) => void): Promise<void> {
  const parts = await Promise.all(tensors.map((t) => t.toArray()));
  const bucket = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    bucket.set(p, offset);
    offset += p.length;
  }
  op(bucket);
  const { device } = runtime().runner;
  offset = 0;
  for (const t of tensors) {
    device.queue.writeBuffer(t.buffer, 0, bucket.buffer, offset * 4, t.size * 4);
    offset += t.size;
  }
}

/** Sums each gradient over all ranks, in place. */
export const allreduceGradients = (grads: Tensor[], comm: Communicator) => exchange(grads, (b) => comm.allreduceSum(b));

/** Every rank's `params` become rank 0's. */
export function broadcastParameters(params: Tensor[], comm: Communicator): Promise<void> {
  if (params.some((p) => p.dtype !== "f32")) throw new Error("broadcastParameters: trained weights are f32");
  return exchange(params, (b) => comm.broadcast(b, 0));
}

/** A number summed over all ranks. */
export function sumOverRanks(value: number, comm: Communicator): number {
  const v = Float32Array.of(value);
  comm.allreduceSum(v);
  return v[0]!;
}
