/**
 * Text cleanup of HF's CLIPTokenizer as SD 1.x pipelines run it: transformers falls back to its BasicTokenizer
 * (strip_accents=False, do_split_on_punc=False) when `ftfy` is not installed, which is the common case, so
 * SD 1.x token ids in the wild come from this path. Steps, in BasicTokenizer's order:
 *   1. drop NUL, U+FFFD and control/format/unassigned characters (category C*), turn \t \n \r and Zs into spaces;
 *   2. put spaces around CJK ideographs, so each becomes its own word;
 *   3. NFC, then split on whitespace, lowercase and join with single spaces.
 * There is no HTML unescaping ("&amp;" stays as it is) and no ftfy repair of mojibake, as in that fallback.
 * Category tests use the JS engine's Unicode tables, so characters newer than the reference Python's may differ.
 */

const SEPARATOR = /^[\t\n\r\p{Zs}]$/u;
const CONTROL = /^\p{C}$/u;

/** BasicTokenizer's "Chinese character" blocks (CJK Unified Ideographs and their extensions and compatibility forms). */
const IDEOGRAPH_BLOCKS: [number, number][] = [
  [0x4e00, 0x9fff],
  [0x3400, 0x4dbf],
  [0x20000, 0x2a6df],
  [0x2a700, 0x2b73f],
  [0x2b740, 0x2b81f],
  [0x2b820, 0x2ceaf],
  [0xf900, 0xfaff],
  [0x2f800, 0x2fa1f],
];

const isIdeograph = (cp: number) => IDEOGRAPH_BLOCKS.some(([lo, hi]) => cp >= lo && cp <= hi);

export function cleanText(text: string): string {
  let out = "";
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (SEPARATOR.test(ch)) out += " ";
    else if (cp === 0 || cp === 0xfffd || CONTROL.test(ch)) continue;
    else out += isIdeograph(cp) ? ` ${ch} ` : ch;
  }
  // After step 1 the only whitespace left is " ", U+2028 and U+2029, which Python's str.split() also splits on.
  return out
    .normalize("NFC")
    .split(/\s+/)
    .filter((word) => word !== "")
    .join(" ")
    .toLowerCase();
}
