/** CLIP text and vision towers against PyTorch (fixtures from scripts/fixtures/clip_golden.py). */
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import * as T from "../src/index.ts";
import { readTorchCheckpoint } from "../src/io/index.ts";
import { relError } from "./gradcheck.ts";

const DIR = join(import.meta.dir, "fixtures/clip");
const TOL = 1e-4;

interface F32 {
  shape: number[];
  f32: string;
}
const decode = (a: F32) => new Float32Array(Uint8Array.from(Buffer.from(a.f32, "base64")).buffer);
/** The script's inputs that are formulas rather than stored arrays (see its docstring). */
const formula = (n: number, fn: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => fn(i));
const upstreamGrad = (t: T.Tensor) =>
  T.Tensor.from(
    formula(t.size, (i) => Math.sin(0.1 * i + 0.5)),
    t.shape,
  );

const fixture = await Bun.file(join(DIR, "clip_tiny.json")).json();
const readBin = async (name: string) => (await readTorchCheckpoint(join(DIR, name), { integers: true })).tensors;

let text: T.CLIPTextModelWithProjection;
let vision: T.CLIPVisionModelWithProjection;
let weights: Map<string, T.TensorData>;

beforeAll(async () => {
  await T.initRuntime();
  weights = await readBin("clip_tiny.bin");
  text = new T.CLIPTextModelWithProjection(T.parseCLIPTextConfig(fixture.config));
  vision = new T.CLIPVisionModelWithProjection(T.parseCLIPVisionConfig(fixture.config));
  // The file is a whole CLIPModel with the legacy position_ids buffer: each tower takes its own tensors.
  text.loadWeights(weights);
  vision.loadWeights(weights);
});

afterEach(() => {
  for (const p of [...text.parameters(), ...vision.parameters()]) {
    p.grad?.dispose();
    p.grad = null;
  }
});

const ids: number[] = fixture.text.input_ids.data;

/** last_hidden_state, text_embeds and the gradients of sum(hidden · g), read back. */
async function runText() {
  return T.scopeAsync(async () => {
    const hidden = text.forward(ids);
    const embeds = T.noGrad(() => text.textEmbeds(ids));
    hidden.backward(upstreamGrad(hidden));
    const grads = new Map<string, Float32Array>();
    for (const [name, p] of text.namedParameters()) if (p.grad) grads.set(name, await p.grad.toArray());
    return { hidden: await hidden.toArray(), embeds: await embeds.toArray(), grads };
  });
}

describe("CLIP config", () => {
  test("reads both towers from a CLIPModel config", () => {
    const t = T.parseCLIPTextConfig(fixture.config),
      v = T.parseCLIPVisionConfig(fixture.config);
    expect(t).toEqual({
      vocabSize: 1000,
      maxPositionEmbeddings: 77,
      hiddenSize: 32,
      intermediateSize: 64,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      hiddenAct: "quick_gelu",
      layerNormEps: 1e-5,
      projectionDim: 16,
    });
    expect(v).toMatchObject({ imageSize: 32, patchSize: 8, numChannels: 3, hiddenAct: "gelu", projectionDim: 16 });
  });

  test("CLIPModel's projection_dim wins over a stale sub-config copy; sub-config gaps take transformers' defaults", () => {
    const t = T.parseCLIPTextConfig({
      projection_dim: 1024,
      text_config: { hidden_size: 1024, num_attention_heads: 16, projection_dim: 512 },
    });
    expect(t).toMatchObject({ projectionDim: 1024, hiddenSize: 1024, vocabSize: 49408, maxPositionEmbeddings: 77 });
  });

  test("a standalone config with a missing field or an unknown activation says what is wrong", () => {
    const { text_config } = fixture.config;
    expect(() => T.parseCLIPTextConfig({ ...text_config, vocab_size: undefined })).toThrow(
      "CLIP text config: a field is invalid\n  vocab_size = missing: expected number",
    );
    expect(() => T.parseCLIPVisionConfig({ ...fixture.config.vision_config, hidden_act: "relu" })).toThrow(
      'hidden_act = "relu": expected "quick_gelu" | "gelu"',
    );
  });
});

describe("CLIP text model matches PyTorch", () => {
  test("last_hidden_state, text_embeds and gradients", async () => {
    const ref = fixture.text;
    const { hidden, embeds, grads } = await runText();
    expect(relError(hidden, decode(ref.last_hidden_state))).toBeLessThan(TOL);
    expect(relError(embeds, decode(ref.text_embeds))).toBeLessThan(TOL);

    const tokenGrad = grads.get("text_model.embeddings.token_embedding.weight")!;
    const rows: number[] = ref.grad_token_embedding_rows,
      width = 32;
    const used = rows.flatMap((r) => [...tokenGrad.subarray(r * width, (r + 1) * width)]);
    expect(relError(used, decode(ref.grad_token_embedding))).toBeLessThan(TOL);
    expect(tokenGrad.reduce((s, v) => s + Math.abs(v), 0)).toBeCloseTo(
      used.reduce((s, v) => s + Math.abs(v), 0),
      3,
    );
    expect(
      relError(
        grads.get("text_model.encoder.layers.1.self_attn.q_proj.weight")!,
        decode(ref.grad_layer1_q_proj_weight),
      ),
    ).toBeLessThan(TOL);
  });

  test("checkpointed layers give bitwise the same outputs and gradients", async () => {
    const plain = await runText();
    for (const p of text.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
    text.useCheckpoint = true;
    try {
      const ckpt = await runText();
      expect(ckpt.hidden).toEqual(plain.hidden);
      expect([...ckpt.grads.keys()]).toEqual([...plain.grads.keys()]);
      for (const [name, g] of plain.grads) expect(ckpt.grads.get(name), name).toEqual(g);
    } finally {
      text.useCheckpoint = false;
    }
  });

  test("pooled takes the first EOS (largest id) whether padded with EOS or with 0", async () => {
    const pooled = await T.scopeAsync(async () => T.noGrad(() => text.pooled(text.forward(ids), ids)).toArray());
    const hidden = decode(fixture.text.last_hidden_state),
      eosAt = [6, 13]; // after BOS and 5 or 12 content tokens
    const expected = eosAt.flatMap((pos, b) => [...hidden.subarray((b * 77 + pos) * 32, (b * 77 + pos + 1) * 32)]);
    expect(relError(pooled, expected)).toBeLessThan(TOL);
  });
});

describe("CLIP vision model matches PyTorch", () => {
  const ref = fixture.vision;
  const pixels = () =>
    T.Tensor.from(
      formula(2 * 3 * 32 * 32, (i) => 1.5 * Math.cos(0.37 * i)),
      [2, 3, 32, 32],
    );

  test("pooled, image_embeds and the gradient with respect to the pixels", async () => {
    await T.scopeAsync(async () => {
      const x = pixels().requireGrad();
      const embeds = vision.imageEmbeds(x);
      const pooled = T.noGrad(() => vision.forward(x).pooled);
      expect(relError(await pooled.toArray(), decode(ref.pooled))).toBeLessThan(TOL);
      expect(relError(await embeds.toArray(), decode(ref.image_embeds))).toBeLessThan(TOL);
      embeds.backward(upstreamGrad(embeds));
      expect(relError(await x.grad!.toArray(), decode(ref.grad_pixel_values))).toBeLessThan(TOL);
    });
  });

  test("an open_clip checkpoint converted with openClipToHf gives the same image embeddings", async () => {
    const converted = T.openClipToHf(await readBin("open_clip_tiny_visual.bin"));
    const fromOpenClip = new T.CLIPVisionModelWithProjection(T.parseCLIPVisionConfig(fixture.config));
    fromOpenClip.loadWeights(converted);
    try {
      const [a, b] = await T.scopeAsync(async () =>
        T.noGrad(() => [fromOpenClip.imageEmbeds(pixels()), vision.imageEmbeds(pixels())]).map((t) => t.toArray()),
      );
      expect(await a).toEqual(await b);
    } finally {
      fromOpenClip.dispose();
    }
  });

  test("wrong image size and unconverted open_clip names fail with a hint", async () => {
    expect(() => T.scope(() => vision.imageEmbeds(T.Tensor.zeros([1, 3, 64, 64])))).toThrow(
      "resize or pool the images to 32×32",
    );
    expect(() =>
      vision.loadWeights(new Map([["visual.conv1.weight", { data: new Float32Array(1), shape: [1] }]])),
    ).toThrow("openClipToHf");
  });
});

describe("openClipToHf", () => {
  test("renames the text tower, splits in_proj into q/k/v and transposes the projection", () => {
    const t = (shape: number[], start = 0) => ({
      data: Float32Array.from({ length: shape.reduce((a, b) => a * b) }, (_, i) => start + i),
      shape,
    });
    const out = T.openClipToHf(
      new Map([
        ["token_embedding.weight", t([10, 2])],
        ["positional_embedding", t([77, 2])],
        ["transformer.resblocks.3.attn.in_proj_weight", t([6, 2])],
        ["transformer.resblocks.3.attn.in_proj_bias", t([6])],
        ["transformer.resblocks.3.mlp.c_fc.bias", t([8])],
        ["transformer.resblocks.3.ln_2.weight", t([2])],
        ["ln_final.bias", t([2])],
        ["text_projection", t([2, 3])],
      ]),
    );
    expect([...out.keys()].sort()).toEqual([
      "text_model.embeddings.position_embedding.weight",
      "text_model.embeddings.token_embedding.weight",
      "text_model.encoder.layers.3.layer_norm2.weight",
      "text_model.encoder.layers.3.mlp.fc1.bias",
      ...["k", "q", "v"].flatMap((p) => [
        `text_model.encoder.layers.3.self_attn.${p}_proj.bias`,
        `text_model.encoder.layers.3.self_attn.${p}_proj.weight`,
      ]),
      "text_model.final_layer_norm.bias",
      "text_projection.weight",
    ]);
    expect([...out.get("text_model.encoder.layers.3.self_attn.k_proj.weight")!.data]).toEqual([4, 5, 6, 7]);
    expect([...out.get("text_model.encoder.layers.3.self_attn.v_proj.bias")!.data]).toEqual([4, 5]);
    expect(out.get("text_projection.weight")).toEqual({ data: Float32Array.from([0, 3, 1, 4, 2, 5]), shape: [3, 2] });
    expect(() => T.openClipToHf(new Map([["module.visual.proj", t([2, 2])]]))).toThrow("Strip any wrapper prefix");
  });
});
