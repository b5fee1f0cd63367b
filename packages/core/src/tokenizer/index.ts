export { ClipTokenizer, type ClipCallOptions } from "./clip.ts";
export { CLIP_VOCAB_SIZE, BOS_TOKEN, EOS_TOKEN } from "./vocabulary.ts";
