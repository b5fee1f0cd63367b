// Side-by-side table of our kernels against the PyTorch baseline from the same machine and run.
//   bun bench/compare.ts kernels.json torch.json
export {}; // a module, for top-level await
type Row = { family: string; shape: string; medianMs: number; rate: number; unit: string; peakMiB: number };
const [ours, torch] = (await Promise.all(process.argv.slice(2, 4).map((p) => Bun.file(p!).json()))) as [
  { adapter: string; rows: Row[] },
  { torch: string; device: string; rows: Row[] },
];
console.log(`WebGPU: ${ours.adapter} — PyTorch ${torch.torch} on ${torch.device} (f32, TF32 off)\n`);
console.log("| kernel | shape | ours (ms) | ours | PyTorch (ms) | PyTorch | ours / PyTorch (speed) | our peak MiB |");
console.log("|---|---|---:|---:|---:|---:|---:|---:|");
const fmt = (r: Row) =>
  r.rate >= 1000 ? `${(r.rate / 1000).toFixed(2)} T${r.unit.slice(1)}` : `${r.rate.toFixed(1)} ${r.unit}`;
for (const r of ours.rows) {
  const t = torch.rows.find((x) => x.family === r.family && x.shape === r.shape);
  console.log(
    `| ${r.family} | ${r.shape} | ${r.medianMs.toFixed(3)} | ${fmt(r)} | ${t ? t.medianMs.toFixed(3) : "–"} | ${t ? fmt(t) : "–"} | ${t ? (t.medianMs / r.medianMs).toFixed(2) : "–"} | ${r.peakMiB.toFixed(1)} |`,
  );
}
