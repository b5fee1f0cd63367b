// Model benchmark without the CLI's dependencies (for the GPU machine, where only a node_modules subset travels).
//   bun bench/models-json.ts [sd|small] > models.json      (the table goes to stderr)
import { initRuntime } from "@textcraftor/core";
import { MODEL_HEADER, SD15_SIZES, SMALL_SIZES, formatModelRow, modelCases, runModelBench } from "../packages/cli/src/bench/models.ts";

const size = process.argv[2] ?? "sd";
const rt = await initRuntime();
console.error(`${rt.gpu.info.adapter.name}, ${size} models, random weights\n${MODEL_HEADER}`);
const rows = await runModelBench(modelCases(size === "sd" ? SD15_SIZES : SMALL_SIZES), (r) => console.error(formatModelRow(r)));
console.log(JSON.stringify({ adapter: rt.gpu.info.adapter.name, binding: rt.gpu.info.binding, sizes: size, date: new Date().toISOString(), rows }, null, 2));
