import { Tokenizer } from "@huggingface/tokenizers";
import { cleanText } from "./clean-text.ts";
import { BOS_TOKEN, CLIP_VOCAB_SIZE, EOS_TOKEN, loadClipBpe, parseBpeText, type ClipBpeData } from "./vocabulary.ts";

/** OpenAI CLIP's pre-tokenization pattern. It runs on lowercased text, so CLIP's IGNORECASE flag is left out. */
const CLIP_PATTERN = String.raw`<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`;

let shared: Promise<ClipTokenizer> | undefined;

export interface ClipCallOptions {
  /** Sequence length including BOS and EOS; SD 1.x uses 77. */
  maxLength?: number;
  /** "max_length" pads every row to maxLength, "longest" to the longest row, false not at all. */
  padding?: "max_length" | "longest" | false;
  /** Keep the first maxLength − 2 content tokens, so EOS always ends up at position maxLength − 1. */
  truncation?: boolean;
}

/**
 * SD 1.x's CLIPTokenizer: BOS 49406, EOS 49407, padding with EOS, 77 positions.
 *
 * The byte-level BPE runs on @huggingface/tokenizers, configured like HF's CLIP tokenizer.json: cut out the
 * special tokens, split by CLIP's pattern, map UTF-8 bytes to characters, BPE with `</w>` end-of-word suffixes.
 * Text cleanup is ours (see clean-text.ts): the library's BertNormalizer would be close, but walks UTF-16 units
 * for CJK ideographs and keeps unassigned characters, where HF's slow tokenizer works on code points.
 * One known difference: HF cuts special tokens out of the raw text, we out of the cleaned text, so only spellings
 * like "<|ENDOFTEXT|>" right after punctuation tokenize differently.
 * Checked against scripts/fixtures/tokenizer_reference.py on the test fixtures and on 4000 random strings.
 */
export class ClipTokenizer {
  static readonly bosTokenId = CLIP_VOCAB_SIZE - 2;
  static readonly eosTokenId = CLIP_VOCAB_SIZE - 1;
  static readonly padTokenId = ClipTokenizer.eosTokenId;
  static readonly modelMaxLength = 77;
  readonly vocabSize = CLIP_VOCAB_SIZE;

  private constructor(private readonly engine: Tokenizer) {}

  /** The tokenizer, built on first use (about half a second) and shared by every later caller. */
  static load(): Promise<ClipTokenizer> {
    shared ??= loadClipBpe().then((data) => new ClipTokenizer(new Tokenizer(tokenizerJson(data), {})));
    return shared;
  }

  /** The tokenizer from a merges.txt's text (HF's `tokenizer/merges.txt`), for where no package data can be imported. */
  static fromMerges(text: string): ClipTokenizer {
    return new ClipTokenizer(new Tokenizer(tokenizerJson(parseBpeText(text)), {}));
  }

  /** Content token ids, without BOS/EOS. */
  encode(text: string): number[] {
    const cleaned = cleanText(text);
    return cleaned === "" ? [] : this.engine.encode(cleaned, { add_special_tokens: false }).ids;
  }

  /** Rows of `BOS, tokens…, EOS, EOS padding…`, as HF's `tokenizer(texts, padding, max_length, truncation)`. */
  call(texts: string | readonly string[], options: ClipCallOptions = {}): number[][] {
    const { maxLength = ClipTokenizer.modelMaxLength, padding = "max_length", truncation = true } = options;
    const rows = (typeof texts === "string" ? [texts] : texts).map((text) => {
      const content = this.encode(text);
      return [
        ClipTokenizer.bosTokenId,
        ...(truncation ? content.slice(0, maxLength - 2) : content),
        ClipTokenizer.eosTokenId,
      ];
    });
    const width =
      padding === "max_length" ? maxLength : padding === "longest" ? Math.max(...rows.map((r) => r.length)) : 0;
    return rows.map((row) =>
      row.length < width ? [...row, ...new Array<number>(width - row.length).fill(ClipTokenizer.padTokenId)] : row,
    );
  }

  /** `call` packed row-major into one [texts, maxLength] buffer, the form the embedding kernel reads. */
  callInt32(texts: string | readonly string[], maxLength = ClipTokenizer.modelMaxLength): Int32Array {
    return Int32Array.from(this.call(texts, { maxLength, padding: "max_length", truncation: true }).flat());
  }

  /** Text for ids: bytes back to UTF-8, `</w>` to spaces, trimmed; BOS/EOS are kept unless skipped. */
  decode(ids: readonly number[], { skipSpecialTokens = false } = {}): string {
    if (ids.length === 0) return "";
    return this.engine
      .decode([...ids], { skip_special_tokens: skipSpecialTokens, clean_up_tokenization_spaces: false })
      .trim();
  }
}

/** A tokenizer.json equivalent of HF's CLIP tokenizer, without its normalizer (cleanText runs first). */
function tokenizerJson({ vocab, merges }: ClipBpeData) {
  const special = (content: string) => ({ id: vocab.indexOf(content), content, special: true, normalized: false });
  return {
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: CLIP_PATTERN }, behavior: "Removed", invert: true },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    model: {
      type: "BPE",
      vocab: Object.fromEntries(vocab.map((token, id) => [token, id])),
      merges,
      end_of_word_suffix: "</w>",
      unk_token: EOS_TOKEN,
    },
    post_processor: null,
    decoder: { type: "ByteLevel" },
    added_tokens: [special(BOS_TOKEN), special(EOS_TOKEN)],
  };
}
