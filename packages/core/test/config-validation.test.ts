/**
 * Every model and scheduler config field is checked (type, integer, range) while loading, with all problems in
 * one error naming field, value and what is allowed: values that would sample as NaN (a black image) never load.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as T from "../src/index.ts";
import { ConfigError } from "../src/models/config-schema.ts";
import { SD15_TEXT_ENCODER_CONFIG, SD15_UNET_CONFIG, SD15_VAE_CONFIG } from "../src/models/sd15-configs.ts";
import { TINY_TEXT_CONFIG, TINY_UNET_CONFIG, TINY_VAE_CONFIG } from "./tiny-sd.ts";

/** The bundled model's folder, by path: core's tests may not import the tiny-model package, which sits above core. */
const TINY_MODEL = join(import.meta.dir, "../../tiny-model/sd");

const SD15_SCHEDULER = {
  _class_name: "PNDMScheduler",
  beta_end: 0.012,
  beta_schedule: "scaled_linear",
  beta_start: 0.00085,
  clip_sample: false,
  num_train_timesteps: 1000,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  trained_betas: null,
};
const readJson = (path: string) => JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;

/** The message of what `parse` throws, which must be a ConfigError. */
function problems(parse: () => unknown): string {
  try {
    parse();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("the config was accepted");
}

describe("config validation", () => {
  test("the real SD 1.5 configs, the bundled model's and the test model's load", () => {
    expect(T.parseSchedulerConfig(SD15_SCHEDULER, "DDIMScheduler")).toEqual(T.SD15_SCHEDULER_CONFIG);
    expect(
      T.parseSchedulerConfig(readJson(join(TINY_MODEL, "scheduler/scheduler_config.json")), "DDIMScheduler")
        .numTrainTimesteps,
    ).toBe(1000);
    expect(T.parseUNetConfig(SD15_UNET_CONFIG).timeEmbeddingDim).toBe(1280);
    expect(T.parseUNetConfig(readJson(join(TINY_MODEL, "unet/config.json"))).inChannels).toBe(4);
    expect(T.parseUNetConfig(TINY_UNET_CONFIG).blockOutChannels).toEqual([16, 32]);
    // Newer diffusers save every argument, None ones as null.
    expect(
      T.parseUNetConfig({ ...SD15_UNET_CONFIG, num_attention_heads: null, time_embedding_dim: null }).heads,
    ).toEqual([8, 8, 8, 8]);
    expect(T.parseUNetConfig({ ...SD15_UNET_CONFIG, downsample_padding: 0 }).downsamplePadding).toBe(0);
    expect(T.parseVaeConfig(SD15_VAE_CONFIG).scalingFactor).toBe(0.18215);
    expect(T.parseVaeConfig(readJson(join(TINY_MODEL, "vae/config.json"))).latentChannels).toBe(4);
    expect(T.parseVaeConfig(TINY_VAE_CONFIG).blockOutChannels).toEqual([8, 16]);
    expect(T.parseCLIPTextConfig(SD15_TEXT_ENCODER_CONFIG).hiddenSize).toBe(768);
    expect(T.parseCLIPTextConfig(readJson(join(TINY_MODEL, "text_encoder/config.json"))).vocabSize).toBe(49408);
    expect(T.parseCLIPTextConfig(TINY_TEXT_CONFIG).hiddenAct).toBe("quick_gelu");
  });

  test("scheduler: every bad field at once, with its value and what is allowed", () => {
    const message = problems(() =>
      T.parseSchedulerConfig(
        { ...SD15_SCHEDULER, beta_start: "abc", beta_end: 2, num_train_timesteps: 1e10, steps_offset: -1 },
        "DDIMScheduler",
      ),
    );
    expect(message).toBe(
      [
        "DDIMScheduler config: 4 fields are invalid",
        "  num_train_timesteps = 10000000000: expected a value between 1 and 100000",
        '  beta_start = "abc": expected number',
        "  beta_end = 2: expected a value less than 1",
        "  steps_offset = -1: expected a value greater than or equal to 0",
      ].join("\n"),
    );
    expect(
      problems(() =>
        T.parseSchedulerConfig(
          { ...SD15_SCHEDULER, beta_start: null, trained_betas: [0.1, Number.NaN] },
          "DDIMScheduler",
        ),
      ),
    ).toContain("beta_start = null: expected number\n  trained_betas[1] = NaN: expected a finite number");
    // Each field fine alone, the schedule not: ᾱ underflows and DDIM would divide by 0.
    expect(
      problems(() => T.parseSchedulerConfig({ ...SD15_SCHEDULER, num_train_timesteps: 50_000 }, "DDIMScheduler")),
    ).toContain("num_train_timesteps = 50000: with these betas the signal left at the last timestep");
    expect(
      problems(() => T.parseSchedulerConfig({ ...SD15_SCHEDULER, trained_betas: [0.1, 0.2] }, "DDIMScheduler")),
    ).toContain("trained_betas = 2: needs one beta per training timestep");
  });

  test("unet: negative, fractional, zero and wrong-typed fields", () => {
    const message = problems(() =>
      T.parseUNetConfig({
        ...SD15_UNET_CONFIG,
        in_channels: 0,
        layers_per_block: 1.5,
        block_out_channels: [320, -640, 1280, 1280],
        norm_eps: 0,
        use_linear_projection: "no",
        cross_attention_dim: null,
      }),
    );
    expect(message).toStartWith("unet config: 6 fields are invalid\n");
    for (const line of [
      "in_channels = 0: expected a value between 1 and 16384",
      "block_out_channels[1] = -640: expected a value between 1 and 16384",
      "norm_eps = 0: expected a value greater than 0",
      'use_linear_projection = "no": expected boolean',
      "cross_attention_dim = null: expected number",
    ]) {
      expect(message).toContain(line);
    }
    expect(message).toMatch(/layers_per_block = 1\.5: /);
  });

  test("vae: a zero scaling factor, fractional channels, null", () => {
    const message = problems(() =>
      T.parseVaeConfig({ ...SD15_VAE_CONFIG, scaling_factor: 0, latent_channels: 2.5, layers_per_block: null }),
    );
    expect(message).toBe(
      [
        "vae config: 3 fields are invalid",
        "  latent_channels = 2.5: expected an integer",
        "  layers_per_block = null: expected number",
        "  scaling_factor = 0: expected a value greater than 0",
      ].join("\n"),
    );
  });

  test("clip: zero or negative eps, counts of the wrong kind", () => {
    const message = problems(() =>
      T.parseCLIPTextConfig({
        ...SD15_TEXT_ENCODER_CONFIG,
        layer_norm_eps: -1e-5,
        num_hidden_layers: "12",
        vocab_size: 1e12,
      }),
    );
    expect(message).toBe(
      [
        "CLIP text config: 3 fields are invalid",
        '  num_hidden_layers = "12": expected number',
        "  layer_norm_eps = -0.00001: expected a value greater than 0",
        "  vocab_size = 1000000000000: expected a value between 1 and 1048576",
      ].join("\n"),
    );
    expect(problems(() => T.parseCLIPTextConfig({ ...SD15_TEXT_ENCODER_CONFIG, layer_norm_eps: 0 }))).toContain(
      "layer_norm_eps = 0: expected a value greater than 0",
    );
  });
});

describe("a model folder with a bad config", () => {
  let dir: string;
  beforeAll(async () => {
    await T.initRuntime();
    dir = mkdtempSync(join(tmpdir(), "bad-config-"));
    cpSync(TINY_MODEL, dir, { recursive: true });
  });

  test("is refused while loading, before anything samples (generate used to write a black image)", async () => {
    const schedulerFile = join(dir, "scheduler/scheduler_config.json");
    writeFileSync(
      schedulerFile,
      JSON.stringify({ ...readJson(schedulerFile), beta_start: "abc", num_train_timesteps: 1e10 }),
    );
    await expect(T.loadStableDiffusion(dir)).rejects.toThrow(/beta_start = "abc": expected number/);
    rmSync(dir, { recursive: true, force: true });
  });
});
