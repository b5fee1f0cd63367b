/**
 * Gradient checking: the GPU autograd gradient of L = Σ w ⊙ f(inputs) (w fixed pseudo-random, so every
 * output element matters) against central finite differences of a float64 CPU reference of f.
 */
import { Rng, Tensor, scopeAsync, sum } from "../src/index.ts";

export interface GradInput {
  data: ArrayLike<number>;
  shape: number[];
  grad?: boolean;
}

export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0,
    den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
}

/** Returns the relative error of each checked input's gradient (inputs with grad: false are skipped). */
export async function gradcheck(
  gpu: (xs: Tensor[]) => Tensor,
  cpu: (xs: Float64Array[]) => ArrayLike<number>,
  inputs: GradInput[],
  eps = 1e-3,
): Promise<number[]> {
  const xs = inputs.map((i) => Float64Array.from(i.data));
  const n = cpu(xs).length;
  const w = Float64Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + 0.5) * 0.75 + 0.25);
  const loss = (v: Float64Array[]) => {
    const o = cpu(v);
    let s = 0;
    for (let i = 0; i < n; i++) s += w[i]! * o[i]!;
    return s;
  };

  const analytic = await scopeAsync(async () => {
    const ts = inputs.map((i) => Tensor.from(Float32Array.from(i.data), i.shape).requireGrad(i.grad !== false));
    const out = gpu(ts);
    if (out.size !== n) throw new Error(`gradcheck: GPU output has ${out.size} elements, the CPU reference ${n}`);
    sum(out.mul(Tensor.from(Float32Array.from(w), out.shape))).backward();
    const grads = await Promise.all(ts.map((t) => (t.grad ? t.grad.toArray() : null)));
    ts.forEach((t) => {
      t.grad?.dispose();
      t.grad = null;
    });
    return grads;
  });

  return inputs.flatMap((input, k) => {
    if (input.grad === false) return [];
    const numeric = new Float64Array(xs[k]!.length);
    for (let j = 0; j < numeric.length; j++) {
      const keepV = xs[k]![j]!;
      xs[k]![j] = keepV + eps;
      const lp = loss(xs);
      xs[k]![j] = keepV - eps;
      const lm = loss(xs);
      xs[k]![j] = keepV;
      numeric[j] = (lp - lm) / (2 * eps);
    }
    const got = analytic[k];
    if (!got) throw new Error(`gradcheck: input ${k} received no gradient`);
    return [relError(got, numeric)];
  });
}

/** Deterministic uniform(-scale, scale) values from the project's seeded generator. */
export const rand = (length: number, seed = 1, scale = 1): Float64Array =>
  Float64Array.from(new Rng(seed).uniform(length, scale));
