/** UNet2DConditionModel: SD 1.5 config → structure and size; a tiny model against PyTorch (scripts/fixtures/unet_golden.py). */
import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import * as T from "../src/index.ts";
import { BufferPool, countUNetParameters, unetLayout } from "../src/internal.ts";
import { readTorchCheckpoint, type LoadedTensor } from "../src/io/index.ts";
import { relError } from "./gradcheck.ts";

const FIXTURES = join(import.meta.dir, "fixtures/unet");
/** ~4 s on an idle 2-core lavapipe, mostly compiling pipelines; the margin is for a loaded machine. */

/** stable-diffusion-v1-5 `unet/config.json` (values from reference/SD15.md). */
const SD15 = {
  _class_name: "UNet2DConditionModel",
  act_fn: "silu",
  attention_head_dim: 8,
  block_out_channels: [320, 640, 1280, 1280],
  center_input_sample: false,
  cross_attention_dim: 768,
  down_block_types: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  downsample_padding: 1,
  flip_sin_to_cos: true,
  freq_shift: 0,
  in_channels: 4,
  layers_per_block: 2,
  mid_block_scale_factor: 1,
  norm_eps: 1e-5,
  norm_num_groups: 32,
  out_channels: 4,
  sample_size: 64,
  up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
  use_linear_projection: false,
  transformer_layers_per_block: 1,
  only_cross_attention: false,
  upcast_attention: false,
  dual_cross_attention: false,
  resnet_time_scale_shift: "default",
  time_embedding_type: "positional",
  conv_in_kernel: 3,
  conv_out_kernel: 3,
};

interface Golden {
  sample: { shape: number[]; data: number[] };
  encoder_hidden_states: { shape: number[]; data: number[] };
  timesteps: number[];
  out: { data: number[] };
  grad_out: { data: number[] };
  grad_sample: { data: number[] };
  grad_encoder_hidden_states: { data: number[] };
  grad_weights: Record<string, { data: number[] }>;
  parameter_count: number;
}

let tinyConfig: Record<string, unknown>;
let golden: Golden;
let checkpoint: Map<string, LoadedTensor>;

beforeAll(async () => {
  await T.initRuntime();
  tinyConfig = await Bun.file(join(FIXTURES, "config.json")).json();
  golden = await Bun.file(join(FIXTURES, "golden.json")).json();
  checkpoint = (await readTorchCheckpoint(join(FIXTURES, "model.bin"))).tensors;
});

describe("UNet config", () => {
  test("SD 1.5: block structure and 859,520,964 parameters", () => {
    const config = T.parseUNetConfig(SD15);
    const { down, mid, up } = unetLayout(config);
    expect(down.map((b) => [b.type, b.resnets.map((r) => [r.inChannels, r.outChannels]), b.downsample])).toEqual([
      [
        "CrossAttnDownBlock2D",
        [
          [320, 320],
          [320, 320],
        ],
        true,
      ],
      [
        "CrossAttnDownBlock2D",
        [
          [320, 640],
          [640, 640],
        ],
        true,
      ],
      [
        "CrossAttnDownBlock2D",
        [
          [640, 1280],
          [1280, 1280],
        ],
        true,
      ],
      [
        "DownBlock2D",
        [
          [1280, 1280],
          [1280, 1280],
        ],
        false,
      ],
    ]);
    // Three resnets per up block, fed by the 12 skip tensors (conv_in + 2 resnets and a downsampler per level).
    expect(up.map((b) => [b.type, b.resnets.map((r) => r.inChannels), b.resnets[0]!.outChannels, b.upsample])).toEqual([
      ["UpBlock2D", [2560, 2560, 2560], 1280, true],
      ["CrossAttnUpBlock2D", [2560, 2560, 1920], 1280, true],
      ["CrossAttnUpBlock2D", [1920, 1280, 960], 640, true],
      ["CrossAttnUpBlock2D", [960, 640, 640], 320, false],
    ]);
    // Legacy attention_head_dim 8 = 8 heads everywhere: head dims 40/80/160 and 160 in the mid block.
    expect(down.filter((b) => b.attention).map((b) => b.resnets[0]!.outChannels / b.attention!.heads)).toEqual([
      40, 80, 160,
    ]);
    expect(mid).toEqual({ channels: 1280, attention: { heads: 8, layers: 1 } });
    expect(config.timeEmbeddingDim).toBe(1280);
    expect(countUNetParameters(config)).toBe(859_520_964);
  });

  test("bad configs fail naming the field", () => {
    const bad = (patch: Record<string, unknown>) => () => T.parseUNetConfig({ ...SD15, ...patch });
    expect(
      bad({
        down_block_types: ["CrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
      }),
    ).toThrow(/down_block_types\[1\] = "SimpleCrossAttnDownBlock2D": expected "CrossAttnDownBlock2D" \| "DownBlock2D"/);
    expect(bad({ attention_head_dim: [8, 8, 8] })).toThrow(/"attention_head_dim" has 3 entries for 4 blocks/);
    expect(bad({ attention_head_dim: 7 })).toThrow(/attention_head_dim\[0\] = 7 heads/);
    expect(bad({ up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D"] })).toThrow(/"up_block_types" has 2 blocks/);
    expect(bad({ norm_num_groups: 48 })).toThrow(/norm_num_groups 48/);
    expect(bad({ resnet_time_scale_shift: "scale_shift" })).toThrow(/"resnet_time_scale_shift"/);
    expect(bad({ class_embed_type: "timestep" })).toThrow(/"class_embed_type"/);
  });

  test("tiny config: the count from the config equals the modules' and PyTorch's", () => {
    const unet = new T.UNet2DConditionModel(tinyConfig);
    expect(unet.parameterCount()).toBe(golden.parameter_count);
    expect(countUNetParameters(unet.config)).toBe(golden.parameter_count);
    unet.dispose();
  });
});

describe("UNet2DConditionModel against PyTorch", () => {
  /** Loads the checkpoint, runs forward and backward of sum(out · grad_out); returns out and the gradients. */
  async function run(gradientCheckpointing: boolean) {
    const unet = new T.UNet2DConditionModel(tinyConfig, { gradientCheckpointing });
    unet.loadStateDict(checkpoint);
    try {
      return await T.scopeAsync(async () => {
        const sample = T.Tensor.from(golden.sample.data, golden.sample.shape).requireGrad();
        const states = T.Tensor.from(
          golden.encoder_hidden_states.data,
          golden.encoder_hidden_states.shape,
        ).requireGrad();
        const out = unet.forward(sample, golden.timesteps, states);
        out.backward(T.Tensor.from(golden.grad_out.data, out.shape));
        const params = new Map(unet.namedParameters());
        const weights: Record<string, Float32Array> = {};
        for (const name of Object.keys(golden.grad_weights)) weights[name] = await params.get(name)!.grad!.toArray();
        return {
          out: await out.toArray(),
          gradSample: await sample.grad!.toArray(),
          gradStates: await states.grad!.toArray(),
          weights,
        };
      });
    } finally {
      unet.dispose();
    }
  }

  const expectMatchesGolden = (r: Awaited<ReturnType<typeof run>>) => {
    expect(relError(r.out, golden.out.data), "out").toBeLessThan(1e-4);
    expect(relError(r.gradStates, golden.grad_encoder_hidden_states.data), "grad encoder_hidden_states").toBeLessThan(
      1e-4,
    );
    expect(relError(r.gradSample, golden.grad_sample.data), "grad sample").toBeLessThan(1e-4);
    for (const [name, g] of Object.entries(golden.grad_weights))
      expect(relError(r.weights[name]!, g.data), `grad ${name}`).toBeLessThan(1e-4);
  };

  let plain: Awaited<ReturnType<typeof run>>;

  test("forward and gradients (text states, sample, weights) match", async () => {
    plain = await run(false);
    expectMatchesGolden(plain);
  });

  test("gradient checkpointing gives the same gradients", async () => {
    const checkpointed = await run(true);
    expectMatchesGolden(checkpointed);
    expect(relError(checkpointed.gradStates, plain.gradStates)).toBeLessThan(1e-5);
    expect(relError(checkpointed.weights["conv_in.weight"]!, plain.weights["conv_in.weight"]!)).toBeLessThan(1e-5);
  });

  test("inference under noGrad frees its intermediates and accepts one timestep for the batch", async () => {
    const unet = new T.UNet2DConditionModel(tinyConfig);
    unet.loadStateDict(checkpoint);
    await T.scopeAsync(async () => {
      const sample = T.Tensor.from(golden.sample.data, golden.sample.shape);
      const states = T.Tensor.from(golden.encoder_hidden_states.data, golden.encoder_hidden_states.shape);
      const before = T.memoryStats().liveBytes;
      const out = T.noGrad(() => unet.forward(sample, 500, states));
      expect(T.memoryStats().liveBytes - before).toBe(BufferPool.sizeClass(out.storage.bytes));
      expect(out.shape).toEqual([2, 4, 8, 8]);
    });
    unet.dispose();
  });

  test("a wrong-shape tensor in the checkpoint fails naming the tensor", () => {
    const name = "up_blocks.1.resnets.0.conv_shortcut.weight";
    const broken = new Map(checkpoint);
    broken.set(name, { ...checkpoint.get(name)!, shape: [16, 40, 1, 1] });
    const unet = new T.UNet2DConditionModel(tinyConfig);
    expect(() => unet.loadStateDict(broken)).toThrow(`tensor "${name}": expected shape [16,48,1,1], found [16,40,1,1]`);
    unet.dispose();
  });
});
