/** The aesthetic reward on a tiny predictor in the published layout (5-layer .pth + transformers CLIP vision). */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Tensor,
  initRuntime,
  readWeights,
  scopeAsync,
  writeSafetensors,
  type LoadedReward,
  type TensorData,
} from "@textcraftor/core";
import { AestheticMLP, aesthetic, l2Normalize } from "../src/index.ts";
import { FIXTURES, context, formula, golden, probeGradient, relError } from "./helpers.ts";

const WEIGHTS = join(FIXTURES, "aesthetic");
const MLP = join(WEIGHTS, "tiny-linearMSE.pth");
let reward: LoadedReward;

beforeAll(async () => {
  await initRuntime();
  reward = await aesthetic.load(context(WEIGHTS));
});
afterAll(() => reward.dispose?.());

describe("aesthetic", () => {
  test("the MLP, built from the checkpoint's shapes, matches PyTorch on L2-normalised embeddings", async () => {
    const mlp = AestheticMLP.fromStateDict(await readWeights(MLP), MLP);
    try {
      expect(mlp.inFeatures).toBe(8);
      expect([...mlp.namedParameters()].map(([name]) => name)).toEqual(
        [0, 2, 4, 6, 7].flatMap((i) => [`layers.${i}.weight`, `layers.${i}.bias`]),
      );
      const out = await scopeAsync(async () =>
        mlp
          .forward(
            l2Normalize(
              Tensor.from(
                formula(24, (i) => Math.sin(1.3 * i + 0.7)),
                [3, 8],
              ),
            ),
          )
          .toArray(),
      );
      expect(relError(out, golden.aesthetic_mlp)).toBeLessThan(1e-4);
    } finally {
      mlp.dispose();
    }
  });

  test("scores match PyTorch; the image gradient matches PyTorch and finite differences", async () => {
    const probe = await probeGradient(reward, golden.aesthetic);
    expect(relError(probe.scores, golden.aesthetic.scores)).toBeLessThan(1e-4);
    expect(probe.goldenDerivativeError).toBeLessThan(1e-4);
    expect(probe.finiteDifferenceError).toBeLessThan(1e-2);
  });

  test("mlp= and clip= name the parts directly", async () => {
    const direct = await aesthetic.load(context(undefined, { mlp: MLP, clip: join(WEIGHTS, "clip") }));
    try {
      const probe = await probeGradient(direct, golden.aesthetic);
      expect(relError(probe.scores, golden.aesthetic.scores)).toBeLessThan(1e-4);
    } finally {
      direct.dispose?.();
    }
  });
});

describe("aesthetic errors", () => {
  test("missing weights list the expected files", async () => {
    await expect(aesthetic.load(context())).rejects.toThrow(
      'reward "aesthetic" needs weights: add :weights=PATH to its spec (--reward aesthetic=1:weights=PATH); it expects sac+logos+ava1-l14-linearMSE.pth (the MLP; any one .pth); clip/ (CLIP ViT-L/14',
    );
    await expect(aesthetic.load(context(join(WEIGHTS, "clip")))).rejects.toThrow(
      "no .pth file; put the aesthetic MLP (sac+logos+ava1-l14-linearMSE.pth) there, or pass mlp=FILE",
    );
    await expect(aesthetic.load(context(undefined, { mlp: MLP }))).rejects.toThrow('reward "aesthetic" needs weights');
    await expect(aesthetic.load(context(MLP))).rejects.toThrow(
      "the aesthetic weights are a folder (the MLP .pth and clip/); to name the files themselves, pass mlp=FILE and clip=PATH",
    );
  });

  test("a non-MLP file, an MLP with broken shapes, or one for another CLIP names the tensor and its shape", async () => {
    const dir = mkdtempSync(join(tmpdir(), "aesthetic-"));
    const head = (shapes: [number, number][]) => {
      const file = join(dir, `head-${shapes.flat().join("x")}.safetensors`);
      const zeros = (...shape: number[]): TensorData => ({
        data: new Float32Array(shape.reduce((a, b) => a * b)),
        shape,
      });
      const tensors = new Map(
        shapes.flatMap(([out, inF], k): [string, TensorData][] => [
          [`layers.${2 * k}.weight`, zeros(out, inF)],
          [`layers.${2 * k}.bias`, zeros(out)],
        ]),
      );
      writeFileSync(file, writeSafetensors(tensors));
      return { mlp: file, clip: join(WEIGHTS, "clip") };
    };
    try {
      await expect(
        aesthetic.load(
          context(undefined, { mlp: join(WEIGHTS, "clip/model.safetensors"), clip: join(WEIGHTS, "clip") }),
        ),
      ).rejects.toThrow('no "layers.N.weight" tensors; is this an improved-aesthetic-predictor MLP (.pth)?');
      await expect(
        aesthetic.load(
          context(
            undefined,
            head([
              [12, 8],
              [1, 10],
            ]),
          ),
        ),
      ).rejects.toThrow('"layers.2.weight" has shape [1,10], expected [out, 12] to follow the previous layer');
      await expect(
        aesthetic.load(
          context(
            undefined,
            head([
              [12, 8],
              [3, 12],
            ]),
          ),
        ),
      ).rejects.toThrow('"layers.2.weight" has 3 outputs, expected 1');
      await expect(aesthetic.load(context(undefined, head([[1, 768]])))).rejects.toThrow(
        '"layers.0.weight" [1,768] takes 768-d embeddings, but the CLIP model at',
      );
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test("CLIP weights that do not fit their config name the tensor and both shapes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "aesthetic-"));
    try {
      mkdirSync(join(dir, "clip"));
      copyFileSync(MLP, join(dir, "head.pth"));
      copyFileSync(join(WEIGHTS, "clip/model.safetensors"), join(dir, "clip/model.safetensors"));
      const config = await Bun.file(join(WEIGHTS, "clip/config.json")).json();
      writeFileSync(join(dir, "clip/config.json"), JSON.stringify({ ...config, projection_dim: 4 }));
      await expect(aesthetic.load(context(dir))).rejects.toThrow(
        'tensor "visual_projection.weight": expected shape [4,16], found [8,16]',
      );
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
