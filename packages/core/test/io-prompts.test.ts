/** Prompt files as users' editors and spreadsheets save them (issue #19): encodings, line ends, and errors naming the file. */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePromptFile, PromptFileError, readPrompts } from "../src/training/prompts.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);
const utf16 = (s: string, littleEndian: boolean) => {
  const out = new Uint8Array(2 + s.length * 2);
  const view = new DataView(out.buffer);
  view.setUint16(0, 0xfeff, littleEndian);
  for (let i = 0; i < s.length; i++) view.setUint16(2 + i * 2, s.charCodeAt(i), littleEndian);
  return out;
};
const withBom = (b: Uint8Array) => new Uint8Array([0xef, 0xbb, 0xbf, ...b]);

function refusal(bytes: Uint8Array, path: string): string {
  try {
    parsePromptFile(bytes, path);
  } catch (e) {
    expect(e).toBeInstanceOf(PromptFileError);
    expect((e as Error).message).toContain(path);
    return (e as Error).message;
  }
  throw new Error(`${path} was read, but it should have been refused`);
}

describe("encodings and line ends", () => {
  test("a CSV with a UTF-8 byte-order mark (as Excel saves it) finds its Prompt column", () => {
    expect(parsePromptFile(withBom(utf8("Prompt,Category\na red apple,Food\nélan vital,Abstract\n")), "p.csv")).toEqual(
      ["a red apple", "élan vital"],
    );
  });

  test("a TSV with a UTF-8 byte-order mark", () => {
    expect(parsePromptFile(withBom(utf8("Prompt\tCategory\na cat\tAnimals\n")), "p.tsv")).toEqual(["a cat"]);
  });

  for (const littleEndian of [true, false]) {
    const name = littleEndian ? "LE" : "BE";
    test(`UTF-16 ${name} by its byte-order mark: text, TSV and JSON`, () => {
      expect(parsePromptFile(utf16("a red apple\r\nun café 🍎\r\n", littleEndian), "p.txt")).toEqual([
        "a red apple",
        "un café 🍎",
      ]);
      expect(parsePromptFile(utf16("Prompt\tCategory\r\na dog\tAnimals\r\n", littleEndian), "p.tsv")).toEqual([
        "a dog",
      ]);
      expect(parsePromptFile(utf16(`["one", "two"]`, littleEndian), "p.json")).toEqual(["one", "two"]);
    });
  }

  test("CR-only line ends (classic Mac) split lines in text and CSV", () => {
    expect(parsePromptFile(utf8("a red apple\ra blue car\r\ra green tree\r"), "p.txt")).toEqual([
      "a red apple",
      "a blue car",
      "a green tree",
    ]);
    expect(parsePromptFile(utf8("Prompt,Category\ra cat,Animals\ra dog,Animals\r"), "p.csv")).toEqual([
      "a cat",
      "a dog",
    ]);
  });
});

describe("refusals name the file and the line", () => {
  test("invalid UTF-8 is refused with its line number", () => {
    const bytes = new Uint8Array([...utf8("one\ntwo\r\nthr"), 0xff, ...utf8("ee\nfour\n")]);
    expect(refusal(bytes, "bad.txt")).toMatch(/prompt file bad.txt: line 3 is not valid UTF-8; save the file as UTF-8/);
  });

  test("an unpaired UTF-16 surrogate is refused with its line number", () => {
    const bytes = utf16("one\ntwo\n", true);
    const broken = new Uint8Array([...bytes, 0x00, 0xd8, 0x41, 0x00]);
    expect(refusal(broken, "bad16.txt")).toMatch(/line 3 is not valid UTF-16LE/);
  });

  test("UTF-16 with an odd number of bytes is refused", () => {
    expect(refusal(new Uint8Array([0xff, 0xfe, 0x41, 0x00, 0x42]), "odd.txt")).toMatch(/odd number of bytes/);
  });

  test("NUL bytes (UTF-16 without a byte-order mark, binary files) are refused with the line number", () => {
    expect(refusal(utf8("one\rtwo\r\0three"), "nul.txt")).toMatch(/prompt file nul.txt: line 3 holds a NUL character/);
    const noBom = utf16("a cat\n", true).subarray(2);
    expect(refusal(noBom, "nobom.txt")).toMatch(
      /line 1 holds a NUL character: this is a binary file, or UTF-16 without a byte-order mark/,
    );
  });

  test("JSON, CSV and empty-file errors name the file", () => {
    expect(refusal(utf8(`["one", `), "p.json")).toMatch(
      /prompt file p.json: it is not valid JSON \(.+\); expected a JSON list of prompt strings/,
    );
    expect(refusal(utf8(`{"a": 1}`), "p.json")).toMatch(/prompt file p.json: expected a JSON list of prompt strings/);
    expect(refusal(utf8(`Prompt\n"never closed\n`), "p.csv")).toMatch(
      /prompt file p.csv: it is not a valid CSV file \(.*[Qq]uote/,
    );
    expect(refusal(utf8("Text\nhello\n"), "p.csv")).toMatch(/prompt file p.csv: no "Prompt" column \(columns: Text\)/);
    expect(refusal(utf8("\n  \n"), "blank.txt")).toMatch(/prompt file blank.txt: it holds no prompts/);
  });

  test("a missing file is a PromptFileError naming it", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "prompts-")), "missing.txt");
    await expect(readPrompts(path)).rejects.toThrow(PromptFileError);
    await expect(readPrompts(path)).rejects.toThrow(`cannot read the prompt file ${path}`);
  });

  test("readPrompts reads a file from disk through the same decoding", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "prompts-")), "p.csv");
    writeFileSync(path, withBom(utf8("Prompt\r\na red apple\r\n")));
    expect(await readPrompts(path)).toEqual(["a red apple"]);
  });
});
