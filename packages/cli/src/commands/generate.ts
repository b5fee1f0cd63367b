import { Console, Effect, Option } from "effect";
import { Command, Flag } from "effect/cli";
import {
  controlledEmbeddings,
  encodePng,
  gridPng,
  initRuntime,
  loadStableDiffusion,
  loadTextEncoder,
  samplerNames,
  samplers,
  splitBatch,
  textToImage,
  writeFileAtomic,
  type EncoderMix,
  type SamplerName,
  type Spacing,
  type StableDiffusion,
  type TextToImageOptions,
} from "@textcraftor/core";
import { TINY_MODEL, TINY_TRAIN_SETTINGS } from "@textcraftor/tiny-model";
import { UserFacingError, attempt } from "../errors.ts";
import { deviceFlag, deviceOptions } from "../device-flag.ts";
import { a1111Parameters, freshPath } from "../png-parameters.ts";
import { progressBar } from "../progress.ts";
import { prepareRunDir } from "../run-dir.ts";

// Sampling defaults per model: the bundled one's own (what it was trained and tuned with), else SD 1.5's usual.
const SD_DEFAULTS = { steps: 25, guidance: 7.5 };
const TINY_DEFAULTS = { steps: TINY_TRAIN_SETTINGS.inferenceSteps!, guidance: TINY_TRAIN_SETTINGS.guidanceScale! };
const modelDefaults = (model: string) => (model === TINY_MODEL ? TINY_DEFAULTS : SD_DEFAULTS);

/** Flags shared by `generate` and `mix`. */
const sampling = {
  model: Flag.String("model").pipe(
    Flag.withDescription(
      "A diffusers folder or a single-file SD 1.x checkpoint (.safetensors/.ckpt); default: the bundled tiny model",
    ),
    Flag.withDefault(TINY_MODEL),
  ),
  unet: Flag.String("unet").pipe(
    Flag.withDescription("A tuned UNet (the unet/ folder that `train --train unet` exports); default: the model's own"),
    Flag.optional,
  ),
  prompt: Flag.String("prompt").pipe(
    Flag.withDescription("Prompt (repeat the flag for several); required"),
    Flag.atLeast(1),
  ),
  negativePrompt: Flag.String("negative-prompt").pipe(
    Flag.withDescription("What to steer away from (classifier-free guidance's unconditional side); default empty"),
    Flag.withDefault(""),
  ),
  out: Flag.String("out").pipe(
    Flag.withDescription("Output folder for the PNG files (earlier files are kept); default outputs"),
    Flag.withDefault("outputs"),
  ),
  seed: Flag.Int("seed").pipe(Flag.withDescription("Seed of the first image's noise; default 0"), Flag.withDefault(0)),
  numImages: Flag.Int("num-images").pipe(
    Flag.withDescription("Images per prompt, with seeds seed, seed+1, …; default 1"),
    Flag.withDefault(1),
  ),
  steps: Flag.Int("steps").pipe(
    Flag.withDescription(`Denoising steps; default ${SD_DEFAULTS.steps} (bundled model: ${TINY_DEFAULTS.steps})`),
    Flag.optional,
  ),
  guidance: Flag.Finite("guidance").pipe(
    Flag.withDescription(
      `Classifier-free guidance scale; default ${SD_DEFAULTS.guidance} (bundled model: ${TINY_DEFAULTS.guidance})`,
    ),
    Flag.optional,
  ),
  scheduler: Flag.Literals("scheduler", samplerNames).pipe(
    Flag.withDescription(
      `Sampler: ${samplerNames.map((n) => `${n} (${samplers[n].description})`).join("; ")}; default ddim`,
    ),
    Flag.withDefault("ddim"),
  ),
  spacing: Flag.Literals("spacing", ["leading", "trailing", "linspace", "textcraftor"]).pipe(
    Flag.withDescription(
      "Timesteps (default: the model's scheduler config, leading for SD 1.5): leading, trailing, linspace, or textcraftor (TextCraftor's DDIM: 999, 959, …; ddim only); dpmpp-2m-karras sets its own",
    ),
    Flag.optional,
  ),
  size: Flag.Int("size").pipe(
    Flag.withDescription(
      "Image height and width in pixels; default: the model's sample size (512 for SD 1.5, 32 for the bundled model)",
    ),
    Flag.optional,
  ),
  tunedSteps: Flag.Int("tuned-steps").pipe(
    Flag.withDescription(
      "Use the tuned/mixed encoders for the last S steps only; default: 60 % of the steps (the paper's 15 of 25)",
    ),
    Flag.optional,
  ),
};

interface SamplingFlags {
  model: string;
  unet: Option.Option<string>;
  prompt: readonly string[];
  negativePrompt: string;
  out: string;
  seed: number;
  numImages: number;
  steps: Option.Option<number>;
  guidance: Option.Option<number>;
  scheduler: SamplerName;
  spacing: Option.Option<Spacing>;
  size: Option.Option<number>;
  tunedSteps: Option.Option<number>;
}

/**
 * Samples with an optional encoder mix; per seed, writes one PNG per prompt (its settings in A1111's `parameters`
 * chunk, `tuned` adding what the encoders were) and a grid, never over an earlier file.
 */
const render = (
  flags: SamplingFlags,
  sd: StableDiffusion,
  mix?: Omit<EncoderMix, "lastSteps" | "original">,
  tuned: Record<string, string | number> = {},
) =>
  Effect.gen(function* () {
    const defaults = modelDefaults(flags.model);
    const f = {
      ...flags,
      steps: Option.getOrElse(flags.steps, () => defaults.steps),
      guidance: Option.getOrElse(flags.guidance, () => defaults.guidance),
    };
    if (f.numImages < 1)
      return yield* new UserFacingError({ message: `--num-images ${f.numImages}: expected a positive integer` });
    const size = Option.getOrElse(f.size, () => (sd.source.configs.vae as { sample_size?: number }).sample_size ?? 512);
    const prompts = [...f.prompt];
    const lastSteps = Option.getOrElse(f.tunedSteps, () => Math.round(0.6 * f.steps));
    // The embeddings do not depend on the seed: one control serves every image.
    const control = mix
      ? yield* attempt(async () =>
          controlledEmbeddings(sd, prompts, f.negativePrompt, { original: sd.textEncoder, ...mix, lastSteps }),
        )
      : null;
    yield* attempt(async () => prepareRunDir(f.out, "--out"));
    const bar = progressBar("denoising", f.steps * f.numImages);
    let written = 0;
    for (let k = 0; k < f.numImages; k++) {
      const seed = f.seed + k;
      const options: TextToImageOptions = {
        prompts,
        negativePrompt: f.negativePrompt,
        seed,
        steps: f.steps,
        guidanceScale: f.guidance,
        scheduler: f.scheduler,
        spacing: Option.getOrUndefined(f.spacing),
        height: size,
        width: size,
        onStep: (i) => bar.update(k * f.steps + i),
        embeddingsAt: control?.embeddingsAt,
      };
      // Inside `attempt` so that option errors (a size the VAE cannot take, a spacing the sampler does not take) read as messages.
      const images = yield* attempt(async () => textToImage(sd, options));
      const data = yield* attempt(() => images.toArray());
      const split = splitBatch(data, images.shape);
      images.dispose();
      for (const [i, img] of split.entries()) {
        const parameters = a1111Parameters({
          prompt: prompts[i]!,
          negativePrompt: f.negativePrompt,
          steps: f.steps,
          sampler: f.scheduler,
          guidance: f.guidance,
          seed,
          width: size,
          height: size,
          model: f.model,
          extra: mix ? { ...tuned, "Tuned steps": lastSteps } : {},
        });
        yield* attempt(() =>
          writeFileAtomic(
            freshPath(f.out, `${String(i).padStart(3, "0")}-seed${seed}.png`),
            encodePng(img, { parameters }),
          ),
        );
      }
      if (split.length > 1)
        yield* attempt(() => writeFileAtomic(freshPath(f.out, `grid-seed${seed}.png`), gridPng(split)));
      written += split.length;
    }
    bar.stop();
    control?.dispose();
    yield* Console.log(`wrote ${written} image(s) to ${f.out}/`);
  });

export const generate = Command.make(
  "generate",
  {
    ...sampling,
    device: deviceFlag,
    textEncoder: Flag.String("text-encoder").pipe(
      Flag.withDescription(
        "A tuned text encoder (text_encoder/ folder or weights file), used for the last --tuned-steps; default none (the model's own encoder throughout)",
      ),
      Flag.optional,
    ),
    tunedWeight: Flag.Finite("tuned-weight").pipe(
      Flag.withDescription("Interpolation w in w·tuned + (1−w)·original (the quality knob); default 1"),
      Flag.withDefault(1),
    ),
  },
  Effect.fn(function* (f) {
    yield* attempt(() => initRuntime(deviceOptions(f.device)));
    const sd = yield* attempt(() => loadStableDiffusion(f.model, { unetPath: Option.getOrUndefined(f.unet) }));
    if (Option.isNone(f.textEncoder)) yield* render(f, sd);
    else {
      const path = f.textEncoder.value;
      const tuned = yield* attempt(() => loadTextEncoder(path, sd.source.configs.textEncoder));
      yield* render(
        f,
        sd,
        {
          mix: [
            { encoder: sd.textEncoder, weight: 1 - f.tunedWeight },
            { encoder: tuned, weight: f.tunedWeight },
          ],
        },
        { "Tuned encoder": path, "Tuned weight": f.tunedWeight },
      );
      tuned.dispose();
    }
    sd.dispose();
  }),
).pipe(
  Command.withDescription("Generate images; with --text-encoder, TextCraftor's hybrid sampling and interpolation"),
);

export const mix = Command.make(
  "mix",
  {
    ...sampling,
    device: deviceFlag,
    encoder: Flag.String("encoder").pipe(
      Flag.withDescription(
        "PATH=WEIGHT of a tuned text encoder, or original=WEIGHT (repeat; weights sum to 1); required",
      ),
      Flag.atLeast(1),
    ),
  },
  Effect.fn(function* (f) {
    yield* attempt(() => initRuntime(deviceOptions(f.device)));
    const sd = yield* attempt(() => loadStableDiffusion(f.model, { unetPath: Option.getOrUndefined(f.unet) }));
    const parts: EncoderMix["mix"] = [];
    for (const spec of f.encoder) {
      const at = spec.lastIndexOf("=");
      const path = spec.slice(0, at),
        weight = Number(spec.slice(at + 1));
      if (at < 1 || !Number.isFinite(weight))
        return yield* new UserFacingError({ message: `--encoder "${spec}": expected PATH=WEIGHT or original=WEIGHT` });
      parts.push({
        encoder:
          path === "original"
            ? sd.textEncoder
            : yield* attempt(() => loadTextEncoder(path, sd.source.configs.textEncoder)),
        weight,
      });
    }
    yield* attempt(async () => {
      const total = parts.reduce((s, p) => s + p.weight, 0);
      if (Math.abs(total - 1) > 1e-6) throw new Error(`--encoder weights must sum to 1 (they sum to ${total})`);
    });
    yield* render(f, sd, { mix: parts }, { "Encoder mix": f.encoder.join(" ") });
    sd.dispose();
  }),
).pipe(Command.withDescription("Style mixing: Σ wₖ·Tₖ(p) over several tuned text encoders (TextCraftor §4.1)"));
