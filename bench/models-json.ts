// Model benchmarks without the CLI's dependencies (for the GPU machine, where only a node_modules subset travels).
//   bun bench/models-json.ts [sd|small] [models|train] > out.json      (the table goes to stderr)
// models: UNet, VAE decode, text encoder (`bench models`); train: text-to-image and a TextCraftor step (`bench train`).
import { initRuntime } from "@textcraftor/core";
import {
  MODEL_HEADER,
  SD15_SIZES,
  SMALL_SIZES,
  formatModelRow,
  modelCases,
  runModelBench,
} from "../packages/cli/src/bench/models.ts";
import { SD15_TRAIN, SMALL_TRAIN, trainCases } from "../packages/cli/src/bench/training.ts";

const size = process.argv[2] ?? "sd";
const suite = process.argv[3] ?? "models";
if (suite !== "models" && suite !== "train") throw new Error(`suite "${suite}": use models or train`);
const rt = await initRuntime();
console.error(`${rt.gpu.info.adapter.name}, ${size} ${suite}, random weights\n${MODEL_HEADER}`);
const cases =
  suite === "models"
    ? modelCases(size === "sd" ? SD15_SIZES : SMALL_SIZES)
    : trainCases(size === "sd" ? SD15_TRAIN : SMALL_TRAIN);
// As `bench train` does: three samples, since an SD-sized training step takes seconds.
const timing = suite === "train" ? { samples: 3, minSampleMs: 0 } : undefined;
const rows = await runModelBench(cases, (r) => console.error(formatModelRow(r)), timing);
console.log(
  JSON.stringify(
    {
      adapter: rt.gpu.info.adapter.name,
      binding: rt.gpu.info.binding,
      sizes: size,
      suite,
      date: new Date().toISOString(),
      rows,
    },
    null,
    2,
  ),
);
