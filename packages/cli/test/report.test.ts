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
  const samples = [{ step: 0, rewards: { colorfulness: 0.2, clip: 0.5 } }, { step: 10, rewards: { colorfulness: 0.3, clip: 0.4 } }];

  test("the held-out summary gives first → last and the relative change per reward", () => {
    const lines = heldOutSummary(runFolder(samples), 2);
    expect(lines[0]).toBe("held-out grid (2 prompts, one seed: a glimpse, not an evaluation), step 0 → 10:");
    expect(lines[1]).toMatch(/^ {2}colorfulness +0\.2000 → 0\.3000 \(\+50\.0 %\)$/);
    expect(lines[2]).toMatch(/^ {2}clip +0\.5000 → 0\.4000 \(-20\.0 %\)$/);
    expect(heldOutSummary(runFolder(samples.slice(0, 1)), 2)).toEqual([]);
  });

  test("report.html links the grids with their scores, lists the settings and escapes prompts", async () => {
    const dir = runFolder(samples);
    const html = readFileSync(await writeReport(dir, ["a <b>bold</b> \"cat\" & dog", "red apple"], "text_encoder"), "utf8");
    expect(html).toContain('src="before-after.png"');
    expect(html).toContain("“a &#60;b&#62;bold&#60;/b&#62; &#34;cat&#34; &#38; dog”");
    expect(html).not.toContain("<b>bold");
    expect(html).toContain('src="samples/step-000010.png"');
    expect(html).toContain("step 10: colorfulness 0.3000, clip 0.4000");
    expect(html).toContain("<td>colorfulness</td><td>0.2000</td><td>0.3000</td><td>+50.0 %</td>");
    expect(html).toContain("<td>lr</td><td>0.001</td>");
    expect(html).toContain('href="text_encoder/"');
  });
});
