/**
 * An exponential moving average of the trained weights (diffusers' EMAModel with a fixed decay): after each
 * update, shadow ← decay · shadow + (1 − decay) · θ, starting from the weights the run starts with. Samples and
 * the export use the shadow; its state goes into checkpoints so a resumed run averages exactly as before.
 */
import { runtime } from "../tensor/runtime.ts";
import { keep, scope } from "../tensor/scope.ts";
import { noGrad } from "../tensor/autograd.ts";
import { Tensor } from "../tensor/tensor.ts";

const copyInto = (dst: Tensor, src: Tensor) =>
  runtime()
    .runner.commandEncoder()
    .copyBufferToBuffer(src.buffer, 0, dst.buffer, 0, src.size * 4);

export class EMA {
  private shadow: Tensor[];

  constructor(
    readonly params: Tensor[],
    readonly decay: number,
  ) {
    if (!(decay >= 0 && decay < 1)) throw new Error(`EMA decay must be in [0, 1) (got ${decay})`);
    this.shadow = params.map((p) => {
      const s = keep(Tensor.empty(p.shape));
      copyInto(s, p);
      return s;
    });
  }

  /** Folds the current weights into the average (call after each optimizer update). */
  update(): void {
    this.shadow = this.shadow.map((s, i) => {
      const next = keep(scope(() => noGrad(() => s.mul(this.decay).add(this.params[i]!.mul(1 - this.decay)))));
      s.dispose();
      return next;
    });
  }

  /** Runs `fn` with the averaged weights in the parameters, then puts the trained ones back. */
  async withAveraged<T>(fn: () => Promise<T>): Promise<T> {
    const live = this.params.map((p) => {
      const t = keep(Tensor.empty(p.shape));
      copyInto(t, p);
      return t;
    });
    this.copyTo();
    try {
      return await fn();
    } finally {
      this.params.forEach((p, i) => copyInto(p, live[i]!));
      for (const t of live) t.dispose();
    }
  }

  /** Overwrites the parameters with the average (at the end of a run, before the export). */
  copyTo(): void {
    this.params.forEach((p, i) => copyInto(p, this.shadow[i]!));
  }

  async state(): Promise<Float32Array[]> {
    return Promise.all(this.shadow.map((t) => t.toArray()));
  }

  loadState(values: Float32Array[]): void {
    if (values.length !== this.shadow.length)
      throw new Error(`EMA.loadState: ${values.length} tensors for ${this.shadow.length} parameters`);
    const r = runtime().runner;
    r.flush();
    this.shadow.forEach((s, i) => {
      const v = values[i]!;
      if (v.length !== s.size)
        throw new Error(`EMA.loadState: tensor ${i} has ${v.length} values for a parameter of ${s.size}`);
      r.device.queue.writeBuffer(s.buffer, 0, v.buffer, v.byteOffset, v.byteLength);
    });
  }

  dispose(): void {
    for (const t of this.shadow) t.dispose();
  }
}
