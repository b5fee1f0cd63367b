/**
 * Tensors past the adapter's storage-binding limit (128 MiB on lavapipe) work with every op: SD 1.5's own text
 * encoder, whose token table is 152 MB, runs forward and backward here; and a PyTorch-checked training step
 * gives the same gradients when a 1 MiB limit forces its token table into windows.
 */
import { expect, test } from "bun:test";
import * as T from "../src/index.ts";
import { checkTrainingStepGolden } from "./trainer-golden.ts";

const gpu = await T.openDevice();

test("SD 1.5's text encoder (152 MB token table) runs forward and backward under lavapipe's 128 MiB binding limit", async () => {
  const { runner } = T.useDevice(gpu);
  const encoder = T.withInitMode("gpu", () => new T.CLIPTextModel(T.parseCLIPTextConfig(T.SD15_TEXT_ENCODER_CONFIG)));
  const table = new Map(encoder.namedParameters()).get("text_model.embeddings.token_embedding.weight")!;
  expect(table.size * 4).toBeGreaterThan(runner.maxBindingBytes);
  // 49406/49407 (BOS, EOS and padding) lie in the table's second window; 7 and 43690 in the first.
  const ids = [49406, 7, 43690, 43691, ...Array(73).fill(49407)];
  await T.scopeAsync(async () => {
    const rewritten = runner.rewrittenDispatches;
    const hidden = encoder.forward(ids);
    const weight = T.Tensor.from(new T.Rng(3).uniform(hidden.size, 1), hidden.shape);
    hidden.mul(weight).backward(T.Tensor.full(hidden.shape, 1));
    expect(runner.rewrittenDispatches).toBeGreaterThan(rewritten);
    const out = await hidden.toArray();
    expect(out.every(Number.isFinite)).toBe(true);
    // The gradient reaches exactly the rows of the ids used, on both sides of the window boundary.
    const grad = await table.grad!.toArray(),
      dim = 768;
    const rowNorm = (id: number) => Math.hypot(...grad.subarray(id * dim, (id + 1) * dim));
    for (const id of [49406, 49407, 7, 43690, 43691]) expect(rowNorm(id), `row ${id}`).toBeGreaterThan(0);
    for (const id of [0, 43689, 43692, 49405]) expect(rowNorm(id), `row ${id}`).toBe(0);
    // The lookup itself: the padding rows of the embedding equal the table's row 49407 plus their position embeddings.
    const rows = await T.embedding(table, [49407, 43691]).toArray();
    const all = await table.toArray();
    expect(Array.from(rows.subarray(0, dim))).toEqual(Array.from(all.subarray(49407 * dim, 49408 * dim)));
    expect(Array.from(rows.subarray(dim))).toEqual(Array.from(all.subarray(43691 * dim, 43692 * dim)));
  });
  encoder.dispose();
}, 600_000);

test("a training step matches PyTorch when a 1 MiB binding limit splits its tensors into windows", async () => {
  const { runner } = T.useDevice(gpu, { maxBindingBytes: 2 ** 20 });
  await checkTrainingStepGolden(true);
  // The 6.3 MB token table's lookup, its gradient's scatter, and the ops on that gradient.
  expect(runner.rewrittenDispatches).toBeGreaterThan(2);
}, 600_000);
