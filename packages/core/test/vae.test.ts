/** AutoencoderKL against a plain-PyTorch reference (fixtures from scripts/fixtures/vae_golden.py). */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import * as T from "../src/index.ts";
import { readTorchCheckpoint } from "../src/io/index.ts";
import { AutoencoderKL, parseVaeConfig } from "../src/models/vae/index.ts";
import { BufferPool, countVaeParameters, renameLegacyVaeAttention } from "../src/internal.ts";
import { clamp } from "../src/ops/elementwise.ts";
import { relError } from "./gradcheck.ts";

const DIR = join(import.meta.dir, "fixtures/vae");
// The first use of each kernel variant compiles a pipeline, seconds each on a CPU Vulkan driver.
type Entry = { shape: number[]; data: number[] };
type Golden = Record<
  "image" | "mean" | "logvar" | "latents" | "decoded" | "images" | "grad_out" | "grad_latents" | "grad_weight",
  Entry
> & {
  grad_weight_name: string;
  parameter_count: number;
};

let golden: Golden;
let configJson: Record<string, unknown>;
let weights: Map<string, T.TensorData>;
let vae: AutoencoderKL;

const readBin = async (name: string) => (await readTorchCheckpoint(join(DIR, name))).tensors;
const tensor = (e: Entry) => T.Tensor.from(e.data, e.shape);
const loaded = (json: Record<string, unknown>, tensors: Map<string, T.TensorData>) => {
  const model = AutoencoderKL.fromConfig(json, { seed: 7 });
  model.loadWeights(tensors);
  return model;
};

beforeAll(async () => {
  await T.initRuntime();
  golden = await Bun.file(join(DIR, "golden.json")).json();
  configJson = await Bun.file(join(DIR, "config.json")).json();
  weights = await readBin("diffusion_pytorch_model.bin");
  vae = loaded(configJson, weights);
});
afterAll(() => vae?.dispose());

/** sum(decodeToImage(latents) · g) backpropagated; returns the latents' and the chosen weight's gradients. */
async function rewardGradients(model: AutoencoderKL): Promise<{ latents: Float32Array; weight: Float32Array }> {
  const weight = [...model.namedParameters()].find(([n]) => n === golden.grad_weight_name)![1];
  model.requiresGrad(false);
  weight.requiresGrad = true;
  try {
    return await T.scopeAsync(async () => {
      const latents = tensor(golden.latents).requireGrad();
      T.sum(model.decodeToImage(latents).mul(tensor(golden.grad_out))).backward();
      const grads = { latents: await latents.grad!.toArray(), weight: await weight.grad!.toArray() };
      latents.grad!.dispose();
      return grads;
    });
  } finally {
    weight.grad?.dispose();
    weight.grad = null;
    model.requiresGrad(true);
  }
}

/** Names of the autograd nodes reachable from `out`. */
function nodeNames(out: T.Tensor): Set<string> {
  const names = new Set<string>(),
    seen = new Set<T.Tensor>(),
    stack = [out];
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t) || !t.gradFn) continue;
    seen.add(t);
    names.add(t.gradFn.name);
    stack.push(...t.gradFn.inputs);
  }
  return names;
}

describe("AutoencoderKL matches PyTorch", () => {
  test("encoder: mean and clamped log-variance after quant_conv", async () => {
    await T.scopeAsync(async () => {
      const { mean, logvar } = T.noGrad(() => vae.encode(tensor(golden.image)));
      expect(mean.shape).toEqual(golden.mean.shape);
      expect(relError(await mean.toArray(), golden.mean.data)).toBeLessThan(1e-4);
      expect(relError(await logvar.toArray(), golden.logvar.data)).toBeLessThan(1e-4);
    });
  });

  test("decoder: decode and decodeToImage", async () => {
    await T.scopeAsync(async () => {
      const latents = tensor(golden.latents);
      const decoded = T.noGrad(() => vae.decode(latents.div(configJson.scaling_factor as number)));
      expect(decoded.shape).toEqual(golden.decoded.shape);
      expect(relError(await decoded.toArray(), golden.decoded.data)).toBeLessThan(1e-4);
      expect(relError(await T.noGrad(() => vae.decodeToImage(latents)).toArray(), golden.images.data)).toBeLessThan(
        1e-4,
      );
    });
  });

  test("reward gradient through decodeToImage, w.r.t. the latents and a decoder weight", async () => {
    const grads = await rewardGradients(vae);
    expect(relError(grads.latents, golden.grad_latents.data)).toBeLessThan(1e-4);
    expect(relError(grads.weight, golden.grad_weight.data)).toBeLessThan(1e-4);
  });

  test("without a tape, decoding frees its intermediates on return", async () => {
    await T.scopeAsync(async () => {
      const latents = tensor(golden.latents);
      const before = T.memoryStats().liveBytes;
      const images = T.noGrad(() => vae.decodeToImage(latents));
      expect(T.memoryStats().liveBytes - before).toBe(BufferPool.sizeClass(images.size * 4));
    });
  });

  test("gradient checkpointing of the up blocks gives the same gradients", async () => {
    const plain = await rewardGradients(vae);
    vae.decoder.gradientCheckpointing = true;
    try {
      await T.scopeAsync(async () => {
        expect(nodeNames(vae.decodeToImage(tensor(golden.latents).requireGrad())).has("checkpoint")).toBe(true);
      });
      const checkpointed = await rewardGradients(vae);
      expect(relError(checkpointed.latents, plain.latents)).toBeLessThan(1e-6);
      expect(relError(checkpointed.weight, plain.weight)).toBeLessThan(1e-6);
    } finally {
      vae.decoder.gradientCheckpointing = false;
    }
  });
});

describe("loading", () => {
  test("legacy query/key/value/proj_attn names with 1×1-conv shapes load to identical outputs", async () => {
    const legacy = await readBin("legacy_attention.bin");
    expect(legacy.get("decoder.mid_block.attentions.0.query.weight")!.shape).toEqual([16, 16, 1, 1]);
    const current = [...weights].filter(([n]) => !/mid_block\.attentions\.0\.to_/.test(n));
    const model = loaded(configJson, new Map([...current, ...legacy]));
    try {
      await T.scopeAsync(async () => {
        const decode = (m: AutoencoderKL) => T.noGrad(() => m.decodeToImage(tensor(golden.latents))).toArray();
        expect(await decode(model)).toEqual(await decode(vae));
      });
    } finally {
      model.dispose();
    }
  });

  test("a checkpoint with both legacy and current names is refused", () => {
    const both = new Map([
      ...weights,
      ["encoder.mid_block.attentions.0.query.weight", weights.get("encoder.mid_block.attentions.0.to_q.weight")!],
    ]);
    expect(() => renameLegacyVaeAttention(both)).toThrow(
      /both "encoder\.mid_block\.attentions\.0\.query\.weight" and "encoder\.mid_block\.attentions\.0\.to_q\.weight"/,
    );
  });

  test("a missing tensor fails naming it", () => {
    const partial = new Map(weights);
    partial.delete("decoder.up_blocks.1.resnets.1.conv2.bias");
    const model = AutoencoderKL.fromConfig(configJson);
    try {
      expect(() => model.loadWeights(partial)).toThrow(
        /missing tensor "decoder\.up_blocks\.1\.resnets\.1\.conv2\.bias"/,
      );
    } finally {
      model.dispose();
    }
  });
});

describe("config", () => {
  test("the parameter count from the config equals the built model's and PyTorch's", () => {
    expect(countVaeParameters(vae.config)).toBe(vae.parameterCount());
    expect(vae.parameterCount()).toBe(golden.parameter_count);
  });

  test("SD 1.5's vae/config.json gives 83,653,863 parameters", () => {
    const sd15 = parseVaeConfig({
      _class_name: "AutoencoderKL",
      act_fn: "silu",
      block_out_channels: [128, 256, 512, 512],
      down_block_types: ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
      in_channels: 3,
      latent_channels: 4,
      layers_per_block: 2,
      norm_num_groups: 32,
      out_channels: 3,
      sample_size: 512,
      scaling_factor: 0.18215,
      up_block_types: ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
    });
    expect(sd15.scalingFactor).toBe(0.18215);
    expect(countVaeParameters(sd15)).toBe(83_653_863);
  });

  test("layouts other than SD's are refused with the offending key", () => {
    expect(() => parseVaeConfig({ ...configJson, act_fn: "gelu" })).toThrow(/act_fn "gelu"/);
    expect(() => parseVaeConfig({ ...configJson, norm_num_groups: 3 })).toThrow(/not divisible by norm_num_groups 3/);
  });
});

test("clamp passes the gradient inside [min, max] (boundaries included) and blocks it outside", async () => {
  await T.scopeAsync(async () => {
    const x = T.Tensor.from([-0.5, 0, 0.3, 1, 1.5, 2], [2, 3]).requireGrad();
    const y = clamp(x, 0, 1);
    expect([...(await y.toArray())]).toEqual([0, 0, Math.fround(0.3), 1, 1, 1]);
    T.sum(y.mul(T.Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]))).backward();
    expect([...(await x.grad!.toArray())]).toEqual([0, 2, 3, 4, 0, 0]);
    x.grad!.dispose();
  });
});
