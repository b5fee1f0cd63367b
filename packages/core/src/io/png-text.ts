/**
 * PNG text chunks for any Unicode: fast-png writes tEXt, which holds Latin-1 only, so text beyond it (a prompt in
 * Japanese, an emoji) goes into an iTXt chunk (UTF-8), as PIL and therefore A1111 write it. Readers take either.
 */
const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: Latin-1 is every code point up to U+00FF, controls included
export const isLatin1 = (s: string) => /^[\u0000-\u00ff]*$/.test(s);

/** `png` with an uncompressed iTXt chunk `keyword` = `text` inserted before IEND. */
export function withITXt(png: Uint8Array, keyword: string, text: string): Uint8Array {
  const utf8 = new TextEncoder();
  // keyword \0, compression flag 0, method 0, language tag "" \0, translated keyword "" \0, then the UTF-8 text.
  const body = new Uint8Array([...utf8.encode(keyword), 0, 0, 0, 0, 0, ...utf8.encode(text)]);
  const typed = new Uint8Array([...utf8.encode("iTXt"), ...body]);
  const chunk = new Uint8Array(12 + body.length);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, body.length);
  chunk.set(typed, 4);
  view.setUint32(8 + body.length, crc32(typed));
  const iend = png.length - 12; // IEND is always the last chunk: length 0, type, CRC.
  return new Uint8Array([...png.subarray(0, iend), ...chunk, ...png.subarray(iend)]);
}
