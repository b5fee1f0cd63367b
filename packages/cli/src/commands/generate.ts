import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Console, Effect, Option } from "effect";
import { Command, Flag } from "effect/cli";
import { gridPng, initRuntime, loadStableDiffusion, splitBatch, encodePng, textToImage, writeFileAtomic } from "@textcraftor/core";
import { attempt } from "../errors.ts";
import { progressBar } from "../progress.ts";

export const generate = Command.make(
  "generate",
  {
    model: Flag.String("model").pipe(Flag.withDescription("A diffusers folder or a single-file SD 1.x checkpoint (.safetensors/.ckpt)")),
    prompt: Flag.String("prompt").pipe(Flag.withDescription("Prompt (repeat the flag for several)"), Flag.atLeast(1)),
    negativePrompt: Flag.String("negative-prompt").pipe(Flag.withDefault("")),
    out: Flag.String("out").pipe(Flag.withDescription("Output folder for the PNG files"), Flag.withDefault("outputs")),
    seed: Flag.Int("seed").pipe(Flag.withDefault(0)),
    steps: Flag.Int("steps").pipe(Flag.withDefault(25)),
    guidance: Flag.Finite("guidance").pipe(Flag.withDescription("Classifier-free guidance scale"), Flag.withDefault(7.5)),
    scheduler: Flag.Literals("scheduler", ["ddim", "euler"]).pipe(Flag.withDescription("Sampler (deterministic DDIM, or Euler)"), Flag.withDefault("ddim")),
    spacing: Flag.Literals("spacing", ["leading", "trailing", "textcraftor"]).pipe(
      Flag.withDescription("Timesteps: leading (SD 1.5's config), trailing, or textcraftor (TextCraftor's DDIM: 999, 959, …; ddim only)"),
      Flag.withDefault("leading"),
    ),
    size: Flag.Int("size").pipe(Flag.withDescription("Image height and width in pixels"), Flag.optional),
    textEncoder: Flag.String("text-encoder").pipe(Flag.withDescription("Use this (e.g. tuned) text encoder: a text_encoder/ folder or weights file"), Flag.optional),
  },
  Effect.fn(function* (f) {
    yield* attempt(() => initRuntime());
    const sd = yield* attempt(() => loadStableDiffusion(f.model, { textEncoderPath: Option.getOrUndefined(f.textEncoder) }));
    const size = Option.getOrElse(f.size, () => (sd.source.configs.vae as { sample_size?: number }).sample_size ?? 512);
    const bar = progressBar("denoising", f.steps);
    // Inside `attempt` so that option errors (a size the VAE cannot take, euler with textcraftor spacing) read as messages.
    const images = yield* attempt(async () => textToImage(sd, {
      prompts: [...f.prompt], negativePrompt: f.negativePrompt, seed: f.seed, steps: f.steps, guidanceScale: f.guidance,
      scheduler: f.scheduler, spacing: f.spacing,
      height: size, width: size, onStep: (i) => bar.update(i),
    }));
    const data = yield* attempt(() => images.toArray());
    bar.stop();
    mkdirSync(f.out, { recursive: true });
    const split = splitBatch(data, images.shape);
    for (const [i, img] of split.entries()) yield* attempt(() => writeFileAtomic(join(f.out, `${String(i).padStart(3, "0")}-seed${f.seed}.png`), encodePng(img)));
    if (split.length > 1) yield* attempt(() => writeFileAtomic(join(f.out, `grid-seed${f.seed}.png`), gridPng(split)));
    images.dispose();
    sd.dispose();
    yield* Console.log(`wrote ${split.length} image(s) to ${f.out}/`);
  }),
).pipe(Command.withDescription("Generate images from prompts with a Stable Diffusion 1.x model"));
