// What a new user of the published packages writes: load the bundled tiny model, make one image, save it.
// scripts/pack-check.ts runs it under Node, Deno and Bun from a folder where only the tarballs are installed.
//   node generate.mjs OUT.png   |   deno run --unstable-webgpu -A generate.mjs OUT.png   |   bun generate.mjs OUT.png
import { writeFileSync } from "node:fs";
import { encodePng, initRuntime, loadStableDiffusion, splitBatch, textToImage } from "@textcraftor/core";
import { TINY_MODEL } from "@textcraftor/tiny-model";

const out = process.argv[2] ?? "image.png";
const started = performance.now();
const { gpu } = await initRuntime();
const sd = await loadStableDiffusion(TINY_MODEL);
const loaded = performance.now();
const images = textToImage(sd, { prompts: ["red apple"], seed: 0, steps: 6, guidanceScale: 5, height: 32, width: 32 });
const pixels = await images.toArray();
const done = performance.now();
writeFileSync(out, encodePng(splitBatch(pixels, images.shape)[0]));
console.log(JSON.stringify({
  runtime: gpu.info.runtime, binding: gpu.info.binding, adapter: gpu.info.adapter.name,
  loadSeconds: (loaded - started) / 1000, sampleSeconds: (done - loaded) / 1000, shape: images.shape, pixels: Array.from(pixels),
}));
images.dispose();
sd.dispose();
gpu.destroy();
