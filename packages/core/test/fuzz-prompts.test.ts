/**
 * Fuzzing the prompt-file reader (issue #19): random bytes, mutated valid files, and random text in every encoding
 * and line-end style. Properties: a list of non-empty prompts without NUL, or a PromptFileError naming the file;
 * and the same text gives the same prompts whatever its encoding (UTF-8 with or without BOM, UTF-16 LE/BE) and
 * line ends (LF, CRLF, CR).
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { parsePromptFile, PromptFileError } from "../src/training/prompts.ts";
import {
  collecting,
  expectPeakRiseBelow,
  peakMemory,
  expectTyped,
  fuzzParameters,
  mutate,
  mutationsArb,
} from "./fuzz-mutations.ts";

const PATHS = ["p.txt", "p.csv", "p.tsv", "p.json"];
const SAMPLES: Record<string, string> = {
  "p.txt": "a red apple\nun café 🍎\n\nthe end\n",
  "p.csv": 'Prompt,Category\n"a red, ripe apple",Food\nun café 🍎,Drinks\n',
  "p.tsv": "Prompt\tCategory\na red apple\tFood\nun café 🍎\tDrinks\n",
  "p.json": `["a red apple", "un café 🍎", "the end"]`,
};
const utf8 = (s: string) => new TextEncoder().encode(s);
const utf16 = (s: string, littleEndian: boolean) => {
  const out = new Uint8Array(2 + s.length * 2);
  const view = new DataView(out.buffer);
  view.setUint16(0, 0xfeff, littleEndian);
  for (let i = 0; i < s.length; i++) view.setUint16(2 + i * 2, s.charCodeAt(i), littleEndian);
  return out;
};

function check(bytes: Uint8Array, path: string): string[] | undefined {
  try {
    const prompts = parsePromptFile(bytes, path);
    expect(prompts.length).toBeGreaterThan(0);
    for (const p of prompts)
      if (!p || p !== p.trim() || p.includes("\0")) throw new Error(`bad prompt ${JSON.stringify(p)}`);
    return prompts;
  } catch (e) {
    expectTyped(e, PromptFileError);
    expect((e as Error).message).toContain(path);
    return undefined;
  }
}

const outcome = (result: string[] | undefined) => JSON.stringify(result ?? "refused");

const start = peakMemory();

describe("prompt file fuzzing", () => {
  test("random bytes: prompts or a PromptFileError naming the file", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 120 }),
        fc.constantFrom(...PATHS),
        collecting((bytes, path) => {
          check(bytes, path);
        }),
      ),
      fuzzParameters,
    );
  }, 120_000);

  test("mutated valid files in every encoding: prompts or a PromptFileError naming the file", () => {
    const encodings = [
      (s: string) => utf8(s),
      (s: string) => new Uint8Array([0xef, 0xbb, 0xbf, ...utf8(s)]),
      (s: string) => utf16(s, true),
      (s: string) => utf16(s, false),
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...PATHS),
        fc.nat(encodings.length - 1),
        mutationsArb,
        collecting((path, encoding, mutations) => {
          check(mutate(encodings[encoding]!(SAMPLES[path]!), mutations), path);
        }),
      ),
      fuzzParameters,
    );
  }, 120_000);

  test("the same text reads the same in every encoding and with any line ends", () => {
    // Text without NUL or lone surrogates (which are not text) and without CR (which is a line end).
    const textArb = fc.string({ unit: "grapheme", maxLength: 40 }).map((s) => s.replace(/[\0\r]/g, ""));
    const linesArb = fc.array(textArb, { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(
        linesArb,
        fc.constantFrom("p.txt", "p.csv", "p.tsv"),
        collecting((lines, path) => {
          const text =
            path === "p.txt"
              ? lines.join("\n")
              : `Prompt\n${lines.map((l) => `"${l.replace(/"/g, '""')}"`).join("\n")}\n`;
          const reference = outcome(check(utf8(text), path));
          for (const variant of [
            new Uint8Array([0xef, 0xbb, 0xbf, ...utf8(text)]),
            utf16(text, true),
            utf16(text, false),
            utf8(text.replace(/\n/g, "\r\n")),
            utf8(text.replace(/\n/g, "\r")),
          ])
            expect(outcome(check(variant, path))).toBe(reference);
        }),
      ),
      { ...fuzzParameters, numRuns: 2_000 },
    ); // six reads a case; the 10,000-case suites are above
  }, 120_000);

  test("no case allocated beyond its file: the suite raised the peak memory by under 512 MiB", () =>
    expectPeakRiseBelow(2 ** 29, start));
});
