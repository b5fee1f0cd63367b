import { beforeAll, describe, expect, test } from "bun:test";
import * as T from "../src/index.ts";

beforeAll(async () => {
  await T.initRuntime();
});

const live = () => T.memoryStats().liveBytes;
const DIM = 32,
  ROWS = 256,
  LAYERS = 6;

/** An identity op whose backward notes the live bytes when backward reaches it. */
const probe = (x: T.Tensor, seen: number[]) =>
  T.record(x.detach(), "probe", [x], (g) => {
    seen.push(live());
    return [g.reshape(g.shape)];
  });

/** A stack of layer-norm → linear → tanh blocks; each block in its own scope when `scoped`, as the models run them. */
function stack(x: T.Tensor, weights: T.Tensor[], scoped: boolean, seen: number[] = []): T.Tensor {
  let h = x;
  for (const w of weights) {
    const block = (input: T.Tensor) => probe(T.tanh(T.linear(T.layerNorm(input, null, null), w)), seen);
    h = scoped ? T.scope(() => block(h)) : block(h);
  }
  return T.sum(h.mul(h));
}

async function gradients(scoped: boolean, seen?: number[]) {
  const x = T.Tensor.from(
    Float32Array.from({ length: ROWS * DIM }, (_, i) => Math.sin(i * 0.37)),
    [ROWS, DIM],
  ).requireGrad();
  const weights = Array.from({ length: LAYERS }, (_, l) =>
    T.Tensor.from(
      Float32Array.from({ length: DIM * DIM }, (_, i) => Math.cos(i * 0.11 + l) / 8),
      [DIM, DIM],
    ).requireGrad(),
  );
  const before = live();
  T.scope(() => stack(x, weights, scoped, seen).backward());
  const grads = await Promise.all([x, ...weights].map((t) => t.grad!.toArray()));
  for (const t of [x, ...weights]) {
    t.grad!.dispose();
    t.dispose();
  }
  return { grads, before };
}

describe("tensors the tape reads belong to their node", () => {
  test("a scope closed inside a taped forward is safe: the same gradients as without it", async () => {
    const plain = await gradients(false);
    const scoped = await gradients(true);
    scoped.grads.forEach((g, i) => expect(Array.from(g)).toEqual(Array.from(plain.grads[i]!)));
  });

  test("activations are freed as backward visits their nodes, and nothing is left after", async () => {
    const seen: number[] = [];
    const baseline = live();
    const { before } = await gradients(true, seen);
    expect(seen.length).toBe(LAYERS);
    // Backward reaches the last block first; each block it leaves behind frees its activations and statistics.
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeLessThan(seen[i - 1]!);
    expect(live()).toBe(baseline);
    expect(before).toBeGreaterThan(baseline);
  });

  test("a graph dropped without backward frees everything its scopes asked to free", () => {
    const x = T.Tensor.from(new Float32Array(ROWS * DIM).fill(0.5), [ROWS, DIM]).requireGrad();
    const w = T.Tensor.from(new Float32Array(DIM * DIM).fill(0.01), [DIM, DIM]).requireGrad();
    const before = live();
    T.scope(() => {
      stack(x, [w, w, w], true);
    });
    expect(live()).toBe(before);
    x.dispose();
    w.dispose();
  });

  test("a second backward through a spent graph says so", () => {
    const x = T.Tensor.from([1, 2, 3]).requireGrad();
    T.scope(() => {
      const y = T.sum(T.exp(x));
      y.backward();
      expect(() => y.backward()).toThrow(/already backpropagated.*run the forward again/);
    });
    x.grad!.dispose();
    x.dispose();
  });
});
