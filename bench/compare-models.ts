// Side-by-side table of whole models (or the tiny training step), ours against PyTorch, from one run on one machine.
//   bun bench/compare-models.ts ours.json torch.json        (bench/vs-torch-json.ts and bench/torch_models.py)
import type { OurThreads } from "../packages/cli/src/bench/threads.ts";
import type { VsTorchRow } from "../packages/cli/src/bench/vs-torch.ts";
import { headerLines, percentOf, type TorchEnv } from "./vs-torch.ts";

type TorchRow = Omit<VsTorchRow, "dispatches">;
export interface Sides {
  ours: { adapter: string; suite: "models" | "train"; threads: OurThreads; rows: VsTorchRow[] };
  torch: { torch: string; env: TorchEnv; rows: TorchRow[] };
}

export function modelTable({ ours, torch }: Sides): string[] {
  const lines = [
    `WebGPU: ${ours.adapter} — PyTorch ${torch.torch} (CPU, f32); medians of ${ours.rows[0]?.samples.length ?? 0} runs (ours) and ${torch.rows[0]?.samples.length ?? 0} (PyTorch) after one warm-up run, ${ours.suite === "train" ? "the trainer fixture's weights" : "random weights"}`,
    ...headerLines(ours.threads, torch.env),
    "",
    "| model | pass | shape | params | ours (ms) | PyTorch (ms) | ours / PyTorch (% of its speed) | our dispatches |",
    "|---|---|---|---:|---:|---:|---:|---:|",
  ];
  for (const r of ours.rows) {
    const t = torch.rows.find((x) => x.model === r.model && x.pass === r.pass && x.shape === r.shape);
    lines.push(
      `| ${r.model} | ${r.pass} | ${r.shape} | ${r.params.toFixed(1)}M | ${r.medianMs.toFixed(1)} | ${t ? t.medianMs.toFixed(1) : "–"} | ${t ? percentOf(r.medianMs, t.medianMs) : "–"} | ${r.dispatches} |`,
    );
  }
  return lines;
}

if (import.meta.main) {
  const [ours, torch] = await Promise.all(process.argv.slice(2, 4).map((p) => Bun.file(p!).json()));
  console.log(modelTable({ ours, torch }).join("\n"));
}
