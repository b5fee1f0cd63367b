/**
 * Global-norm gradient clipping as torch.nn.utils.clip_grad_norm_: the norm over all gradients together, and
 * the factor that scales them to at most `maxNorm` (applied inside the AdamW kernel, so no extra pass).
 */
import { sum } from "../ops/reduce.ts";
import { noGrad } from "../tensor/autograd.ts";
import { scope } from "../tensor/scope.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** √Σ g² over every gradient, read back once (NaN or ±Inf when a gradient holds one). */
export async function globalGradNorm(grads: readonly Tensor[]): Promise<number> {
  if (!grads.length) return 0;
  const total = scope(() =>
    noGrad(() => {
      let acc: Tensor | null = null;
      for (const g of grads) {
        const squares = sum(g.mul(g));
        acc = acc ? acc.add(squares) : squares;
      }
      return acc!;
    }),
  );
  const value = await total.item();
  total.dispose();
  return Math.sqrt(value);
}

/** The factor torch applies: maxNorm / (norm + 1e-6), never above 1. */
export function clipFactor(norm: number, maxNorm: number): number {
  return Math.min(1, maxNorm / (norm + 1e-6));
}
