/**
 * What a finished run folder says about itself: the held-out summary printed after `train`, and report.html,
 * one page with base vs tuned on held-out prompts, the rewards, the settings, the before/after grid, the curves
 * and every sample grid. Images are inlined as data: URIs, so the page is one self-contained file to share.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "@textcraftor/core";
import { verdict, type PairedRow } from "./paired.ts";

interface SampleRow {
  step: number;
  rewards: Record<string, number>;
}

function readSamples(runDir: string): SampleRow[] {
  const file = join(runDir, "samples.jsonl");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as SampleRow);
}

const signedPercent = (a: number, b: number) => `${b >= a ? "+" : ""}${((100 * (b - a)) / Math.abs(a)).toFixed(1)} %`;

/** "reward: first → last (±x %)" over the held-out grid, from the first and last lines of samples.jsonl. */
export function heldOutSummary(runDir: string, prompts: number): string[] {
  const rows = readSamples(runDir);
  if (rows.length < 2) return [];
  const first = rows[0]!,
    last = rows[rows.length - 1]!;
  // A grid is a handful of images at one seed: say so, since a small score (CLIP's) can swing by tens of percent.
  return [
    `held-out grid (${prompts} prompts, one seed: a glimpse, not an evaluation), step ${first.step} → ${last.step}:`,
    ...Object.keys(first.rewards).map((k) => {
      const a = first.rewards[k]!,
        b = last.rewards[k]!;
      return `  ${k.padEnd(14)} ${a.toFixed(4)} → ${b.toFixed(4)} (${signedPercent(a, b)})`;
    }),
  ];
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const table = (head: string[], rows: string[][]) =>
  `<table><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}</tr>\n${rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`).join("\n")}</table>`;

const MIME: Record<string, string> = { png: "image/png", svg: "image/svg+xml" };
/** A file of the run folder as a data: URI. */
const inline = (runDir: string, file: string) =>
  `data:${MIME[file.split(".").pop()!]};base64,${readFileSync(join(runDir, file)).toString("base64")}`;

export interface ReportExtras {
  /** The end-of-run evaluation: base vs tuned on the same prompts and seeds. */
  evaluation?: { prompts: number; seeds: number; rows: PairedRow[] } | null;
  /** The reward mix, as "name × weight". */
  rewards?: string[];
  /** before-after.png shows prompts spread over the evaluation's ranking of gains, not the grid's. */
  rankedBeforeAfter?: boolean;
}

/** Writes runDir/report.html; `evalPrompts` are the grid's prompts, in column order. */
export async function writeReport(
  runDir: string,
  evalPrompts: readonly string[],
  exported: string | null,
  { evaluation, rewards = [], rankedBeforeAfter = false }: ReportExtras = {},
): Promise<string> {
  const config = JSON.parse(readFileSync(join(runDir, "config.json"), "utf8")) as Record<string, unknown>;
  const samples = readSamples(runDir);
  const first = samples[0],
    last = samples[samples.length - 1];
  const grids = existsSync(join(runDir, "samples"))
    ? readdirSync(join(runDir, "samples"))
        .filter((f) => f.endsWith(".png"))
        .sort()
    : [];
  const scoresAt = new Map(samples.map((s) => [s.step, s.rewards]));
  const section = (title: string, body: string) => `<h2>${escapeHtml(title)}</h2>\n${body}`;
  const parts = [
    `<h1>TextCraftor run: ${escapeHtml(runDir)}</h1>`,
    evaluation?.rows.length
      ? section(
          "Base vs tuned",
          `<p>The same ${evaluation.prompts} held-out prompts at ${evaluation.seeds} seed(s) for both (${evaluation.rows[0]!.n} pairs); ± is the paired standard error, and a difference under 2 SE is within noise.</p>\n` +
            table(
              ["reward", "base", "tuned", "difference", "verdict"],
              evaluation.rows.map((r) => [
                r.reward,
                r.base.toFixed(4),
                r.tuned.toFixed(4),
                `${r.diff >= 0 ? "+" : ""}${r.diff.toFixed(4)} ± ${r.se.toFixed(4)}`,
                verdict(r),
              ]),
            ),
        )
      : section(
          "Base vs tuned",
          "<p>No end-of-run evaluation (<code>--eval-limit 0</code>, or the UNet stage): the grids below are a few images at one seed, a glimpse rather than a measurement; <code>bun run cli eval --base</code> compares on many prompts.</p>",
        ),
    rewards.length ? section("Rewards", `<ul>${rewards.map((r) => `<li>${escapeHtml(r)}</li>`).join("")}</ul>`) : "",
    first && last && samples.length > 1
      ? section(
          `Held-out grid, step ${first.step} → ${last.step}`,
          `<p>${evalPrompts.length} prompts at one seed: a glimpse, not an evaluation (<code>bun run cli eval</code> scores every held-out prompt at several seeds).</p>\n` +
            table(
              ["reward", `step ${first.step}`, `step ${last.step}`, "change"],
              Object.keys(first.rewards).map((k) => [
                k,
                first.rewards[k]!.toFixed(4),
                last.rewards[k]!.toFixed(4),
                signedPercent(first.rewards[k]!, last.rewards[k]!),
              ]),
            ),
        )
      : "",
    existsSync(join(runDir, "before-after.png"))
      ? section(
          "Before and after",
          `<p>Top row before training, bottom row after${rankedBeforeAfter ? ", at the evaluation's first seed; the columns are held-out prompts spread over the ranking of their gain in the weighted reward, from the largest gain to the largest loss" : ""}; columns: ${evalPrompts.map((p) => `“${escapeHtml(p)}”`).join(", ")}.</p>\n<img class="pixels" src="${inline(runDir, "before-after.png")}" alt="before and after">`,
        )
      : "",
    existsSync(join(runDir, "curves.svg"))
      ? section("Curves", `<img src="${inline(runDir, "curves.svg")}" alt="loss and rewards per step">`)
      : "",
    grids.length
      ? section(
          "Sample grids",
          grids
            .map((g) => {
              const step = Number(/step-(\d+)/.exec(g)?.[1]);
              const scores = scoresAt.get(step);
              const caption = `step ${step}${
                scores
                  ? `: ${Object.entries(scores)
                      .map(([k, v]) => `${k} ${v.toFixed(4)}`)
                      .join(", ")}`
                  : ""
              }`;
              return `<figure><img class="pixels" src="${inline(runDir, join("samples", g))}" alt="${escapeHtml(caption)}"><figcaption>${escapeHtml(caption)}</figcaption></figure>`;
            })
            .join("\n"),
        )
      : "",
    section(
      "Settings",
      table(
        ["setting", "value"],
        Object.entries(config).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : String(v)]),
      ),
    ),
    section(
      "Files",
      `<ul><li><a href="metrics.jsonl">metrics.jsonl</a> (every step)</li><li><a href="samples.jsonl">samples.jsonl</a> (held-out scores per grid)</li>` +
        `<li><a href="config.json">config.json</a> and <a href="run.json">run.json</a> (settings; model, rewards and prompts)</li>${exported ? `<li><a href="${escapeHtml(exported)}/">${escapeHtml(exported)}/</a> (the tuned weights, diffusers layout)</li>` : ""}</ul>`,
    ),
  ];
  const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>TextCraftor run: ${escapeHtml(runDir)}</title>
<style>
body { font-family: sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; }
table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
img.pixels { image-rendering: pixelated; min-width: 32em; max-width: 100%; }
figure { margin: 1em 0; }
</style></head><body>
${parts.filter(Boolean).join("\n\n")}
</body></html>
`;
  const path = join(runDir, "report.html");
  await writeFileAtomic(path, new TextEncoder().encode(html));
  return path;
}
