// Our side of the whole-model tables against PyTorch (bench/vs-torch.sh runs both sides and the table).
//   bun bench/vs-torch-json.ts models|train [--samples N] [--tiny] [--only unet|vit] > ours.json   (progress: stderr)
// --samples: timed runs after one warm-up run; default 1 for the models (seconds to minutes each on 2 cores), 5 for the step.
// models: SD 1.5 UNet at 16² latents and ViT-L/14 at 224 px (--tiny: the same layouts at tiny widths);
// train: the tiny model's training step, with our dispatches per step.
import { parseArgs } from "node:util";
import { initRuntime } from "@textcraftor/core";
import { ourThreads } from "../packages/cli/src/bench/threads.ts";
import {
  FULL_SIZES,
  TINY_SIZES,
  modelVsTorchCases,
  runVsTorch,
  tinyStepCase,
} from "../packages/cli/src/bench/vs-torch.ts";

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  options: { samples: { type: "string" }, tiny: { type: "boolean", default: false }, only: { type: "string" } },
  allowPositionals: true,
});
const suite = positionals[0];
if (suite !== "models" && suite !== "train") throw new Error(`suite "${suite}": use models or train`);
const samples = Number(values.samples ?? (suite === "models" ? 1 : 5));
if (!Number.isInteger(samples) || samples < 1) throw new Error(`--samples ${values.samples}: give a whole number ≥ 1`);
const all = suite === "models" ? modelVsTorchCases(values.tiny ? TINY_SIZES : FULL_SIZES) : [tinyStepCase()];
// --only splits the models table into two runs where one does not fit the time at hand.
const cases = values.only === undefined ? all : all.filter((c) => c.model === values.only);
if (!cases.length) throw new Error(`--only ${values.only}: use ${[...new Set(all.map((c) => c.model))].join(" or ")}`);
const rt = await initRuntime();
const rows = await runVsTorch(cases, samples, (r) =>
  console.error(`${r.model} ${r.pass}: ${r.medianMs.toFixed(1)} ms, ${r.dispatches} dispatches`),
);
console.log(
  JSON.stringify(
    {
      adapter: rt.gpu.info.adapter.name,
      binding: rt.gpu.info.binding,
      suite,
      threads: ourThreads(rt),
      date: new Date().toISOString(),
      rows,
    },
    null,
    2,
  ),
);
