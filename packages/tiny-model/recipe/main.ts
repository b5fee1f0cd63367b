/**
 * Retrains the bundled tiny model from scratch: `bun run recipe:tiny [--out DIR] [--stages clip,vae,unet]
 * [--scale F]`. Stage outputs land in DIR (default: this package, replacing the committed weights) with
 * recipe.json recording the data, seeds, settings, loss curves and times. Later stages read earlier ones
 * from DIR, so a stage can be rerun alone (`--stages samples` only redraws samples.png). --scale multiplies
 * every stage's steps (0.02 for a smoke run).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  AutoencoderKL,
  CLIPTextModel,
  SD15_SCHEDULER_CONFIG,
  createStableDiffusion,
  gridPng,
  initRuntime,
  loadStableDiffusion,
  parseCLIPTextConfig,
  readWeights,
  saveDiffusersFolder,
  splitBatch,
  textToImage,
  withInitMode,
  writeFileAtomic,
  writeSafetensors,
  type TensorData,
  type CLIPTextModelWithProjection,
  type CLIPVisionModelWithProjection,
} from "@textcraftor/core";
import { CLIP_CONFIG, TEXT_CONFIG, UNET_CONFIG, VAE_CONFIG } from "./configs.ts";
import { EMOJI_PACKAGE, ensureEmojiPackage, loadEmoji } from "./emoji.ts";
import { splitPrompts } from "./prompts.ts";
import { CLIP_TEMPERATURE_SCALE, trainClip } from "./train-clip.ts";
import { trainUnet } from "./train-unet.ts";
import { trainVae } from "./train-vae.ts";

export const RECIPE = {
  seed: 0,
  clip: { steps: 800, batch: 64, lr: 1e-3 },
  vae: { steps: 600, batch: 16, lr: 1e-3, klWeight: 1e-4 },
  unet: { steps: 1000, batch: 32, lr: 1e-3, captionDropout: 0.1 },
};

const { values: args } = parseArgs({
  options: {
    out: { type: "string" },
    stages: { type: "string", default: "clip,vae,unet" },
    scale: { type: "string", default: "1" },
  },
});
const out = resolve(args.out ?? join(import.meta.dir, ".."));
const stages = new Set(args.stages!.split(","));
const scale = Number(args.scale);
if (!(scale > 0)) throw new Error(`--scale ${args.scale}: expected a positive number`);
const steps = (n: number) => Math.max(2, Math.round(n * scale));

await initRuntime();
const data = loadEmoji(ensureEmojiPackage());
console.log(`${data.captions.length} captioned ${data.size}×${data.size} emoji from ${EMOJI_PACKAGE}`);
const prompts = splitPrompts(data.captions);
mkdirSync(join(out, "prompts"), { recursive: true });
writeFileSync(join(out, "prompts/train.txt"), prompts.train.join("\n") + "\n");
writeFileSync(join(out, "prompts/heldout.txt"), prompts.heldOut.join("\n") + "\n");

const report: Record<string, unknown> = {
  data: { package: EMOJI_PACKAGE, images: data.captions.length, size: data.size },
  seed: RECIPE.seed,
  scale,
  recipe: RECIPE,
};
// recipe.json is merged after every stage, so a stage rerun alone keeps the others' records.
const recordStage = async (stage: string, record: object) => {
  const previous = await Bun.file(join(out, "recipe.json"))
    .json()
    .catch(() => ({}));
  writeFileSync(join(out, "recipe.json"), JSON.stringify({ ...previous, ...report, [stage]: record }, null, 1) + "\n");
};
const sdDir = join(out, "sd"),
  clipDir = join(out, "clip");

if (stages.has("clip")) {
  const o = { ...RECIPE.clip, steps: steps(RECIPE.clip.steps), seed: RECIPE.seed };
  const { text, vision, curve, seconds } = await trainClip(data, o);
  await saveClip(clipDir, text, vision);
  await recordStage("clip", { ...o, seconds, curve });
  text.dispose();
  vision.dispose();
}
if (stages.has("vae")) {
  const o = { ...RECIPE.vae, steps: steps(RECIPE.vae.steps), seed: RECIPE.seed + 10 };
  const { vae, scalingFactor, curve, seconds } = await trainVae(data, o);
  // Saved now so that the UNet stage can run alone; that stage then writes the whole diffusers folder.
  const config = { ...VAE_CONFIG, scaling_factor: Number(scalingFactor.toPrecision(5)) };
  mkdirSync(join(sdDir, "vae"), { recursive: true });
  await writeFileAtomic(join(sdDir, "vae/config.json"), new TextEncoder().encode(JSON.stringify(config, null, 2)));
  await writeFileAtomic(
    join(sdDir, "vae/diffusion_pytorch_model.safetensors"),
    writeSafetensors(await vae.stateDict(), { dtype: "F16", metadata: { format: "pt" } }),
  );
  await recordStage("vae", { ...o, scalingFactor: config.scaling_factor, seconds, curve });
  vae.dispose();
}
if (stages.has("unet")) {
  const o = { ...RECIPE.unet, steps: steps(RECIPE.unet.steps), seed: RECIPE.seed + 20 };
  const textEncoder = await textEncoderFromClip(clipDir);
  const vaeConfig = JSON.parse(await Bun.file(join(sdDir, "vae/config.json")).text());
  const vae = withInitMode("none", () => AutoencoderKL.fromConfig(vaeConfig));
  vae.loadWeights(await readWeights(join(sdDir, "vae/diffusion_pytorch_model.safetensors")));
  const { unet, curve, seconds } = await trainUnet(data, textEncoder, vae, vaeConfig.scaling_factor, o);
  const sd = await createStableDiffusion({
    textEncoder,
    unet,
    vae,
    schedulerConfig: SD15_SCHEDULER_CONFIG,
    source: {
      path: sdDir,
      layout: "diffusers",
      configs: { textEncoder: TEXT_CONFIG, unet: UNET_CONFIG, vae: vaeConfig },
    },
  });
  await saveDiffusersFolder(sd, sdDir, { dtype: "F16" });
  await recordStage("unet", { ...o, seconds, curve });
  sd.dispose();
}

// Samples from the saved files, so they show what users get.
const sd = await loadStableDiffusion(sdDir);
const spread = (list: string[]) => Array.from({ length: 8 }, (_, i) => list[Math.floor((i * list.length) / 8)]!);
const shown = [...spread(prompts.train), ...prompts.heldOut.slice(0, 8)];
const images = textToImage(sd, {
  prompts: shown,
  steps: 25,
  guidanceScale: 5,
  height: data.size,
  width: data.size,
  seed: 0,
});
await writeFileAtomic(join(out, "samples.png"), gridPng(splitBatch(await images.toArray(), images.shape), 8));
images.dispose();
writeFileSync(
  join(out, "samples.txt"),
  `samples.png, rows of 8 (DDIM 25 steps, guidance 5, seed 0): first row held-in, second held-out prompts\n${shown.join("\n")}\n`,
);
console.log(`wrote ${out} (${[...stages].join(", ")}); samples in ${join(out, "samples.png")}`);
process.exit(0);

async function saveClip(dir: string, text: CLIPTextModelWithProjection, vision: CLIPVisionModelWithProjection) {
  const tensors = new Map<string, TensorData>([...(await text.stateDict()), ...(await vision.stateDict())]);
  tensors.set("logit_scale", { data: Float32Array.of(Math.log(CLIP_TEMPERATURE_SCALE)), shape: [] });
  mkdirSync(dir, { recursive: true });
  await writeFileAtomic(
    join(dir, "config.json"),
    new TextEncoder().encode(
      JSON.stringify({ ...CLIP_CONFIG, logit_scale_init_value: Math.log(CLIP_TEMPERATURE_SCALE) }, null, 2),
    ),
  );
  await writeFileAtomic(
    join(dir, "model.safetensors"),
    writeSafetensors(tensors, { dtype: "F16", metadata: { format: "pt" } }),
  );
}

/** SD's text encoder is the CLIP text tower without its projection. */
async function textEncoderFromClip(dir: string): Promise<CLIPTextModel> {
  const all = await readWeights(join(dir, "model.safetensors"));
  const model = withInitMode("none", () => new CLIPTextModel(parseCLIPTextConfig(TEXT_CONFIG)));
  model.loadStateDict(new Map([...all].filter(([k]) => k.startsWith("text_model."))));
  return model.requiresGrad(false);
}
