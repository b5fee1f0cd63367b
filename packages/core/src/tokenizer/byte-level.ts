/**
 * CLIP's byte alphabet: each UTF-8 byte stands for one printable character, so BPE never sees whitespace or
 * control characters and any text (accents, CJK, emoji) is covered by the 256 base symbols.
 */

/** The 256 byte characters in CLIP's vocabulary order: printable Latin-1 bytes as themselves, the rest from U+0100 on. */
export function byteAlphabet(): string[] {
  const isPrintable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const printable: string[] = [];
  const shifted: string[] = [];
  for (let b = 0; b < 256; b++) {
    if (isPrintable(b)) printable.push(String.fromCharCode(b));
    else shifted.push(String.fromCharCode(256 + shifted.length));
  }
  return [...printable, ...shifted];
}
