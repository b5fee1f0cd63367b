/** What the recipe's three stages share: the optimizer step, the learning-rate schedule, progress lines. */
import type { AdamW, Tensor } from "@textcraftor/core";

/** 0, 1, …, n − 1: the examples, for PromptSampler to batch. */
export const indices = (n: number) => Array.from({ length: n }, (_, i) => i);

/** backward → AdamW update → clear the gradients (the caller reads back whichever loss it logs). */
export function optimizerStep(optimizer: AdamW, loss: Tensor): void {
  loss.backward();
  optimizer.update();
  optimizer.zeroGrad();
}

/** Linear warm-up, then cosine decay to 10 % of the peak. */
export function learningRate(
  step: number,
  steps: number,
  peak: number,
  warmup = Math.min(100, Math.floor(steps / 10)),
): number {
  if (step < warmup) return (peak * (step + 1)) / warmup;
  const progress = (step - warmup) / Math.max(1, steps - warmup);
  return peak * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** Rows `indices` of a [N, ...] array, concatenated. */
export function gatherRows(data: Float32Array, rowSize: number, indices: readonly number[]): Float32Array {
  const out = new Float32Array(indices.length * rowSize);
  indices.forEach((i, k) => out.set(data.subarray(i * rowSize, (i + 1) * rowSize), k * rowSize));
  return out;
}

/** Logs the running mean loss every `every` steps with the elapsed time; keeps the curve for recipe.json. */
export class LossLog {
  readonly curve: { step: number; loss: number }[] = [];
  private sum = 0;
  private count = 0;
  private readonly start = performance.now();
  constructor(
    private readonly stage: string,
    private readonly steps: number,
    private readonly every = 25,
  ) {}
  add(step: number, loss: number) {
    this.sum += loss;
    this.count++;
    if ((step + 1) % this.every && step + 1 !== this.steps) return;
    const mean = this.sum / this.count;
    this.curve.push({ step: step + 1, loss: Number(mean.toPrecision(5)) });
    console.log(
      `[${this.stage}] step ${step + 1}/${this.steps} loss ${mean.toFixed(5)} (${((performance.now() - this.start) / 1000).toFixed(0)} s)`,
    );
    this.sum = this.count = 0;
  }
  get seconds() {
    return Math.round((performance.now() - this.start) / 1000);
  }
}
