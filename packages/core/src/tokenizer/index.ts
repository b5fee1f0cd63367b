export { ClipTokenizer, type ClipCallOptions } from "./clip.ts";
export { CLIP_VOCAB_SIZE, BOS_TOKEN, EOS_TOKEN, clipMergesText } from "./vocabulary.ts";
