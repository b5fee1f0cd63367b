/** report.html and the held-out summary from a run folder's files (no training needed). */
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { heldOutSummary, writeReport } from "../src/report.ts";

function runFolder(samples: { step: number; rewards: Record<string, number> }[]) {
  const dir = mkdtempSync(join(tmpdir(), "tc-report-"));
  mkdirSync(join(dir, "samples"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ steps: 10, lr: 0.001, lora: null }));
  writeFileSync(join(dir, "samples.jsonl"), samples.map((s) => JSON.stringify(s) + "\n").join(""));
  for (const s of samples) writeFileSync(join(dir, "samples", `step-${String(s.step).padStart(6, "0")}.png`), "");
  writeFileSync(join(dir, "before-after.png"), "");
  return dir;
}

describe("run report", () => {
  const samples = [
    { step: 0, rewards: { colorfulness: 0.2, clip: 0.5 } },
    { step: 10, rewards: { colorfulness: 0.3, clip: 0.4 } },
  ];

  test("the held-out summary gives first → last and the relative change per reward", () => {
    const lines = heldOutSummary(runFolder(samples), 2);
    expect(lines[0]).toBe("held-out grid (2 prompts, one seed: a glimpse, not an evaluation), step 0 → 10:");
    expect(lines[1]).toMatch(/^ {2}colorfulness +0\.2000 → 0\.3000 \(\+50\.0 %\)$/);
    expect(lines[2]).toMatch(/^ {2}clip +0\.5000 → 0\.4000 \(-20\.0 %\)$/);
    expect(heldOutSummary(runFolder(samples.slice(0, 1)), 2)).toEqual([]);
  });

  test("report.html links the grids with their scores, lists the settings and escapes prompts", async () => {
    const dir = runFolder(samples);
    const html = readFileSync(
      await writeReport(dir, ['a <b>bold</b> "cat" & dog', "red apple"], "text_encoder"),
      "utf8",
    );
    expect(html).toContain('<img class="pixels" src="data:image/png;base64,');
    expect(html).toContain("“a &#60;b&#62;bold&#60;/b&#62; &#34;cat&#34; &#38; dog”");
    expect(html).not.toContain("<b>bold");
    expect(html).toContain("step 10: colorfulness 0.3000, clip 0.4000");
    expect(html).toContain("<td>colorfulness</td><td>0.2000</td><td>0.3000</td><td>+50.0 %</td>");
    expect(html).toContain("<td>lr</td><td>0.001</td>");
    expect(html).toContain('href="text_encoder/"');
  });

  test("report.html opens with base vs tuned and the rewards, and is self-contained: every image inlined, nothing fetched", async () => {
    const dir = runFolder(samples);
    writeFileSync(join(dir, "samples", "step-000010.png"), new Uint8Array([137, 80, 78, 71]));
    writeFileSync(join(dir, "curves.svg"), "<svg/>");
    const rows = [
      { reward: "colorfulness", n: 64, base: 0.2, tuned: 0.25, diff: 0.05, se: 0.01 },
      { reward: "clip", n: 64, base: 0.3, tuned: 0.29, diff: -0.01, se: 0.02 },
    ];
    const html = readFileSync(
      await writeReport(dir, ["red apple"], "text_encoder", {
        evaluation: { prompts: 32, seeds: 2, rows },
        rewards: ["colorfulness × 1", "clip × 1.5"],
      }),
      "utf8",
    );
    expect(html.indexOf("<h2>Base vs tuned</h2>")).toBeLessThan(html.indexOf("<h2>Held-out grid"));
    expect(html).toContain("The same 32 held-out prompts at 2 seed(s) for both (64 pairs)");
    expect(html).toContain(
      "<td>colorfulness</td><td>0.2000</td><td>0.2500</td><td>+0.0500 ± 0.0100</td><td>up, 5.0 SE</td>",
    );
    expect(html).toContain(
      "<td>clip</td><td>0.3000</td><td>0.2900</td><td>-0.0100 ± 0.0200</td><td>within noise (|diff| &#60; 2 SE)</td>",
    );
    expect(html).toContain("<li>clip × 1.5</li>");
    expect(html).toContain(`src="data:image/png;base64,${Buffer.from([137, 80, 78, 71]).toString("base64")}"`);
    expect(html).toContain(`src="data:image/svg+xml;base64,${btoa("<svg/>")}"`);
    expect(
      [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)]
        .map((m) => m[1]!)
        .filter((u) => !u.startsWith("data:") && !/^[\w./-]+$/.test(u)),
    ).toEqual([]);
    expect(html).not.toMatch(/https?:|<script|<link|url\(/);
    expect(html.match(/\bsrc="(?!data:)/g)).toBeNull();
  });
});
