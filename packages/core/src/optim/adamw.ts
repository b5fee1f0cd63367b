/** torch.optim.AdamW over a list of parameters, with state that can be saved and restored exactly. */
import * as K from "@textcraftor/webgpu-kernels";
import { runtime } from "../tensor/runtime.ts";
import { Tensor } from "../tensor/tensor.ts";
import { keep } from "../tensor/scope.ts";

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** PyTorch's defaults (TextCraftor uses lr 1e-6 and otherwise the defaults). */
export const ADAMW_DEFAULTS: AdamWConfig = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2 };

export interface AdamWState {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

export class AdamW {
  readonly config: AdamWConfig;
  step = 0;
  private readonly m: Tensor[];
  private readonly v: Tensor[];

  constructor(
    readonly params: Tensor[],
    config: Partial<AdamWConfig> = {},
  ) {
    this.config = { ...ADAMW_DEFAULTS, ...config };
    const half = params.findIndex((p) => p.dtype === "f16");
    if (half >= 0)
      throw new Error(
        `AdamW: parameter ${half} (shape [${params[half]!.shape}]) is stored as f16, which only frozen weights may be; build or load the trained model in f32`,
      );
    this.m = params.map((p) => keep(Tensor.zeros(p.shape)));
    this.v = params.map((p) => keep(Tensor.zeros(p.shape)));
  }

  /** One update from each parameter's `.grad` (parameters without a gradient are left alone), at `lr` (a schedule's). */
  update(gradScale = 1, lr = this.config.lr): void {
    this.step++;
    const r = runtime().runner;
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      K.adamw(r, p.buffer, p.grad.buffer, this.m[i]!.buffer, this.v[i]!.buffer, {
        ...this.config,
        lr,
        step: this.step,
        n: p.size,
        gradScale,
      });
    });
  }

  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  async state(): Promise<AdamWState> {
    return {
      step: this.step,
      m: await Promise.all(this.m.map((t) => t.toArray())),
      v: await Promise.all(this.v.map((t) => t.toArray())),
    };
  }

  loadState(s: AdamWState): void {
    if (s.m.length !== this.params.length || s.v.length !== this.params.length)
      throw new Error(`AdamW.loadState: state has ${s.m.length} moments for ${this.params.length} parameters`);
    const r = runtime().runner;
    r.flush();
    this.params.forEach((p, i) => {
      for (const [dst, src] of [
        [this.m[i]!, s.m[i]!],
        [this.v[i]!, s.v[i]!],
      ] as const) {
        if (src.length !== p.size)
          throw new Error(`AdamW.loadState: moment ${i} has ${src.length} values for a parameter of ${p.size}`);
        r.device.queue.writeBuffer(dst.buffer, 0, src.buffer, src.byteOffset, src.byteLength);
      }
    });
    this.step = s.step;
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}
