// Side-by-side table of our kernels against the PyTorch baseline from the same machine and run.
//   bun bench/compare.ts kernels.json torch.json
import { headerLines, percentOf, type TorchEnv } from "./vs-torch.ts";
import type { OurThreads } from "../packages/cli/src/bench/threads.ts";

type Row = { family: string; shape: string; medianMs: number; rate: number; unit: string; peakMiB: number };
const [ours, torch] = (await Promise.all(process.argv.slice(2, 4).map((p) => Bun.file(p!).json()))) as [
  { adapter: string; threads?: OurThreads; rows: Row[] },
  { torch: string; device: string; env?: TorchEnv; rows: Row[] },
];
console.log(`WebGPU: ${ours.adapter} — PyTorch ${torch.torch} on ${torch.device} (f32, TF32 off)`);
console.log(`${headerLines(ours.threads, torch.env).join("\n")}\n`);
console.log(
  "| kernel | shape | ours (ms) | ours | PyTorch (ms) | PyTorch | ours / PyTorch (% of its speed) | our peak MiB |",
);
console.log("|---|---|---:|---:|---:|---:|---:|---:|");
const fmt = (r: Row) =>
  r.rate >= 1000 ? `${(r.rate / 1000).toFixed(2)} T${r.unit.slice(1)}` : `${r.rate.toFixed(1)} ${r.unit}`;
for (const r of ours.rows) {
  const t = torch.rows.find((x) => x.family === r.family && x.shape === r.shape);
  console.log(
    `| ${r.family} | ${r.shape} | ${r.medianMs.toFixed(3)} | ${fmt(r)} | ${t ? t.medianMs.toFixed(3) : "–"} | ${t ? fmt(t) : "–"} | ${t ? percentOf(r.medianMs, t.medianMs) : "–"} | ${r.peakMiB.toFixed(1)} |`,
  );
}
