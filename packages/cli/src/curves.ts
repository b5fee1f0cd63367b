/**
 * metrics.jsonl → curves.svg: one panel per series (the loss, then each reward), the raw values faint and
 * a moving average on top, so a run's progress reads at a glance without plotting tools.
 */
import { readFileSync } from "node:fs";
import { writeFileAtomic } from "@textcraftor/core";

interface Metric {
  step: number;
  loss: number;
  rewards: Record<string, number>;
  skipped: boolean;
}

const WIDTH = 640,
  PANEL = 150,
  PAD = 40;

export async function writeCurves(metricsFile: string, svgFile: string): Promise<void> {
  const rows = readFileSync(metricsFile, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Metric)
    .filter((m) => !m.skipped);
  if (!rows.length) return;
  const series: [string, number[]][] = [
    ["loss", rows.map((m) => m.loss)],
    ...Object.keys(rows[0]!.rewards).map((k): [string, number[]] => [k, rows.map((m) => m.rewards[k]!)]),
  ];
  const steps = rows.map((m) => m.step);
  const panels = series.map(([name, values], i) => panel(name, steps, values, i * PANEL));
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${series.length * PANEL}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
${panels.join("\n")}
</svg>
`;
  await writeFileAtomic(svgFile, new TextEncoder().encode(svg));
}

function panel(name: string, steps: number[], values: number[], top: number): string {
  const window = Math.max(1, Math.round(values.length / 10));
  const smooth = values.map((_, i) => {
    const part = values.slice(Math.max(0, i - window + 1), i + 1);
    return part.reduce((a, b) => a + b, 0) / part.length;
  });
  let lo = Math.min(...values),
    hi = Math.max(...values);
  if (hi === lo) {
    hi += 1e-6;
    lo -= 1e-6;
  }
  const first = steps[0]!,
    last = Math.max(steps[steps.length - 1]!, first + 1);
  const x = (s: number) => PAD + ((s - first) / (last - first)) * (WIDTH - 2 * PAD);
  const y = (v: number) => top + 20 + (1 - (v - lo) / (hi - lo)) * (PANEL - 45);
  const line = (vs: number[]) => vs.map((v, i) => `${x(steps[i]!).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const label = (v: number) => (Math.abs(v) >= 100 || Math.abs(v) < 0.01 ? v.toExponential(2) : v.toFixed(4));
  return `<g>
<text x="${PAD}" y="${top + 14}" font-weight="bold">${name}</text>
<text x="${WIDTH - PAD}" y="${top + 14}" text-anchor="end">first ${label(smooth[0]!)} → last ${label(smooth[smooth.length - 1]!)} (mean of ${window})</text>
<line x1="${PAD}" y1="${top + PANEL - 25}" x2="${WIDTH - PAD}" y2="${top + PANEL - 25}" stroke="#ccc"/>
<text x="${PAD - 4}" y="${y(hi) + 4}" text-anchor="end" fill="#666">${label(hi)}</text>
<text x="${PAD - 4}" y="${y(lo) + 4}" text-anchor="end" fill="#666">${label(lo)}</text>
<text x="${PAD}" y="${top + PANEL - 12}" fill="#666">step ${first}</text>
<text x="${WIDTH - PAD}" y="${top + PANEL - 12}" text-anchor="end" fill="#666">step ${last}</text>
<polyline points="${line(values)}" fill="none" stroke="#9ecae1" stroke-width="1"/>
<polyline points="${line(smooth)}" fill="none" stroke="#08519c" stroke-width="2"/>
</g>`;
}
