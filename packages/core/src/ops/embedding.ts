/** Embedding lookup by integer ids, with a deterministic scatter-add gradient. */
import * as K from "@textcraftor/webgpu-kernels";
import { record } from "../tensor/autograd.ts";
import { runtime } from "../tensor/runtime.ts";
import { Tensor } from "../tensor/tensor.ts";

/** Uploads u32 data into a pooled buffer that is released once the kernels using it are encoded. */
function withU32<T>(data: Uint32Array, use: (buf: GPUBuffer) => T): T {
  const { pool, runner } = runtime();
  const buf = pool.acquire(Math.max(4, data.byteLength), true);
  runner.device.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
  try {
    return use(buf);
  } finally {
    pool.release(buf);
  }
}

/** table [vocab, dim] looked up at `ids` (shape `idShape`) → [...idShape, dim]. */
export function embedding(table: Tensor, ids: ArrayLike<number>, idShape: readonly number[] = [ids.length]): Tensor {
  const [vocab, dim] = table.shape as [number, number];
  const plan = K.embeddingScatterPlan(ids, vocab); // validates every id against the table
  const rows = ids.length;
  const out = Tensor.empty([...idShape, dim]);
  withU32(Uint32Array.from(ids), (buf) =>
    K.embeddingGather(runtime().runner, table.buffer, buf, out.buffer, { rows, dim, vocab }),
  );
  return record(out, "embedding", [table], (g) => {
    const gt = Tensor.zeros(table.shape);
    withU32(plan.data, (buf) =>
      K.embeddingScatterAdd(runtime().runner, g.buffer, buf, gt.buffer, { rows, dim, vocab, groups: plan.groups }),
    );
    return [gt];
  });
}
