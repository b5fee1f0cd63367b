import { beforeAll, describe, expect, test } from "bun:test";
import { ClipTokenizer, CLIP_VOCAB_SIZE } from "../src/tokenizer/index.ts";
import fixture from "./fixtures/tokenizer.json";

const BOS = 49406;
const EOS = 49407;
let tokenizer: ClipTokenizer;
beforeAll(async () => {
  tokenizer = await ClipTokenizer.load();
});

describe("ClipTokenizer against the Python reference (scripts/fixtures/tokenizer_reference.py)", () => {
  test.each(fixture.cases.map((c) => [JSON.stringify(c.text).slice(0, 60), c] as const))("%s", (_, c) => {
    expect(tokenizer.encode(c.text)).toEqual(c.ids);
    expect(tokenizer.call(c.text)).toEqual([c.inputIds]);
  });
});

describe("ClipTokenizer anchors", () => {
  test("well-known SD 1.x ids", () => {
    expect(tokenizer.call("a photo of a cat", { padding: false })).toEqual([[BOS, 320, 1125, 539, 320, 2368, EOS]]);
    expect(tokenizer.encode("a photograph of an astronaut riding a horse")).toEqual([
      320, 8853, 539, 550, 18376, 6765, 320, 4558,
    ]);
    expect(tokenizer.encode("don't")).toEqual([847, 713]);
  });

  test("the empty prompt (CFG's unconditional input) is BOS then 76 EOS", () => {
    expect(tokenizer.call("")[0]).toEqual([BOS, ...new Array(76).fill(EOS)]);
  });

  test("vocabulary and special ids", () => {
    expect(tokenizer.vocabSize).toBe(49408);
    expect(CLIP_VOCAB_SIZE).toBe(49408);
    expect([ClipTokenizer.bosTokenId, ClipTokenizer.eosTokenId, ClipTokenizer.padTokenId]).toEqual([BOS, EOS, EOS]);
    expect(tokenizer.encode("<|startoftext|><|endoftext|>")).toEqual([BOS, EOS]);
  });

  test("case and whitespace do not change the ids", () => {
    expect(tokenizer.encode("  A\tPhoto \n\nOF a   CAT ")).toEqual(tokenizer.encode("a photo of a cat"));
  });
});

describe("ClipTokenizer packing", () => {
  const cat = 2368;
  test("75 content tokens fit exactly; a 76th is cut and EOS stays at position 76", () => {
    const fits = tokenizer.call(Array(75).fill("cat").join(" "))[0];
    const cut = tokenizer.call(Array(76).fill("cat").join(" "))[0];
    for (const row of [fits, cut]) {
      expect(row.length).toBe(77);
      expect(row[0]).toBe(BOS);
      expect(row.slice(1, 76).every((id) => id === cat)).toBe(true);
      expect(row[76]).toBe(EOS);
    }
  });

  test("without truncation a long prompt keeps every token", () => {
    expect(tokenizer.call(Array(80).fill("cat").join(" "), { truncation: false })[0].length).toBe(82);
  });

  test("batch padding: max_length, longest, none", () => {
    const texts = ["a cat", "a photo of a cat"];
    expect(tokenizer.call(texts).map((r) => r.length)).toEqual([77, 77]);
    expect(tokenizer.call(texts, { padding: "longest" })).toEqual([
      [BOS, 320, cat, EOS, EOS, EOS, EOS],
      [BOS, 320, 1125, 539, 320, cat, EOS],
    ]);
    expect(tokenizer.call(texts, { padding: false }).map((r) => r.length)).toEqual([4, 7]);
    expect(tokenizer.call(texts, { maxLength: 5 })).toEqual([
      [BOS, 320, cat, EOS, EOS],
      [BOS, 320, 1125, 539, EOS],
    ]);
  });

  test("callInt32 packs rows row-major", () => {
    const packed = tokenizer.callInt32(["a cat", ""]);
    expect(packed).toBeInstanceOf(Int32Array);
    expect(packed.length).toBe(2 * 77);
    expect(Array.from(packed.subarray(0, 5))).toEqual([BOS, 320, cat, EOS, EOS]);
    expect(Array.from(packed.subarray(77, 79))).toEqual([BOS, EOS]);
  });
});

describe("ClipTokenizer decode and loading", () => {
  test("decode reverses the byte mapping and the </w> markers", () => {
    const row = tokenizer.call("A Photo of a Café 🐱, naïve!")[0];
    expect(tokenizer.decode(row, { skipSpecialTokens: true })).toBe("a photo of a café 🐱, naïve !");
    expect(tokenizer.decode([BOS, 320, 2368, EOS])).toBe("<|startoftext|>a cat <|endoftext|>");
    expect(tokenizer.decode([])).toBe("");
  });

  test("load shares one instance", async () => {
    expect(await ClipTokenizer.load()).toBe(tokenizer);
  });
});
