/** `eval --base`: the base and the tuned model on the same prompts and seeds, side by side with paired differences. */
import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli } from "./cli.ts";

test("with the base encoder as the 'tuned' one every pair is identical: zero difference, zero error; --base needs --text-encoder", () => {
  const out = join(mkdtempSync(join(tmpdir(), "tc-eval-base-")), "eval.json");
  const encoder = join(import.meta.dir, "../../tiny-model/sd/text_encoder");
  const r = cli(
    "eval",
    "--base",
    "--text-encoder",
    encoder,
    "--limit",
    "3",
    "--seeds",
    "0,1",
    "--steps",
    "2",
    "--out",
    out,
  );
  expect(r.code, r.err + r.out).toBe(0);
  expect(r.out).toContain(
    "base vs tuned on the same 3 held-out prompt(s) × 2 seed(s) (6 pairs); ± is the paired standard error:",
  );
  expect(r.out).toMatch(/ {2}colorfulness +(\d\.\d{4}) +\1 {3}\+0\.0000 ± 0\.0000 \(\+0\.0 %\): no change/);
  const saved = JSON.parse(readFileSync(out, "utf8"));
  expect(saved.paired.map((p: { reward: string }) => p.reward)).toEqual(["colorfulness", "clip", "diversity"]);
  expect(saved.base.colorfulness.scores).toEqual(saved.tuned.colorfulness.scores);
  const refused = cli("eval", "--base", "--limit", "1");
  expect(refused.code).not.toBe(0);
  expect(refused.err).toContain(
    "--base compares the base model with a tuned one: give the tuned encoder with --text-encoder",
  );
});
