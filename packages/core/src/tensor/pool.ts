/**
 * GPU memory that is released deterministically, not by the JS garbage collector.
 *
 * Buffers come in size classes (powers of two, then quarter steps above 1 MiB so large activations do not
 * waste up to half their size). A released buffer goes back to its class with the number of the command
 * batch it was released in. Kernels may reuse it at once — queue order guarantees the earlier dispatches read
 * it first — but a CPU upload (`queue.writeBuffer`) may only reuse a buffer released in an already-submitted
 * batch, because writeBuffer overtakes commands that are still being encoded.
 */
import type { KernelRunner } from "@textcraftor/webgpu-kernels";

interface Free {
  buffer: GPUBuffer;
  releasedInBatch: number;
}

export class BufferPool {
  private readonly free = new Map<number, Free[]>();
  private readonly sizes = new WeakMap<GPUBuffer, number>();
  liveBytes = 0;
  peakBytes = 0;
  pooledBytes = 0;

  constructor(private readonly runner: KernelRunner) {}

  static sizeClass(bytes: number): number {
    const b = Math.max(256, Math.ceil(bytes / 16) * 16);
    const pow = 2 ** Math.ceil(Math.log2(b));
    if (pow <= 1 << 20) return pow;
    const quarter = pow / 8; // steps of 1/8 of the next power: at most 12.5 % waste
    return Math.ceil(b / quarter) * quarter;
  }

  acquire(bytes: number, forCpuWrite = false): GPUBuffer {
    const size = BufferPool.sizeClass(bytes);
    const list = this.free.get(size);
    let buffer: GPUBuffer | undefined;
    if (list?.length) {
      const i = forCpuWrite ? list.findIndex((f) => f.releasedInBatch < this.runner.batch) : list.length - 1;
      if (i >= 0) buffer = list.splice(i, 1)[0]!.buffer;
    }
    if (buffer) this.pooledBytes -= size;
    else {
      const max = this.runner.limits.maxBufferSize ?? Infinity;
      if (size > max) {
        throw new Error(
          `a tensor of ${(bytes / 2 ** 30).toFixed(2)} GiB exceeds this adapter's largest buffer (maxBufferSize ${(max / 2 ** 30).toFixed(2)} GiB; ` +
            "`bun run cli info` lists the limits): lower the batch size or the resolution",
        );
      }
      // GPUBufferUsage is a global only once a binding is loaded: read it here, not at module load.
      buffer = this.runner.device.createBuffer({
        size,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
      this.sizes.set(buffer, size);
    }
    this.liveBytes += size;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    const size = this.sizes.get(buffer);
    if (size === undefined) throw new Error("BufferPool.release: buffer does not belong to this pool");
    this.liveBytes -= size;
    this.pooledBytes += size;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push({ buffer, releasedInBatch: this.runner.batch });
  }

  /** Destroys every pooled (unused) buffer, e.g. between phases with different shapes. */
  trim(): void {
    this.runner.flush();
    for (const list of this.free.values()) for (const f of list) f.buffer.destroy();
    this.free.clear();
    this.pooledBytes = 0;
  }

  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }
}
