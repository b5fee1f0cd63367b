/**
 * Byte-level builders for the reader tests: pickle opcodes, torch.save-style tensor pickles, and zip archives whose
 * headers may state sizes and methods that disagree with their data (what damaged and hostile files do, and what
 * no zip library will write).
 */

const enc = new TextEncoder();
export const u32 = (n: number) => [n & 255, (n >> 8) & 255, (n >> 16) & 255, n >>> 24];
const u16 = (n: number) => [n & 255, (n >> 8) & 255];

// Pickle streams opcode by opcode.
export const str = (s: string) => {
  const b = enc.encode(s);
  return [0x58, ...u32(b.length), ...b];
};
export const int = (n: number) => (n < 256 ? [0x4b, n] : [0x4a, ...u32(n)]);
export const global = (module: string, name: string) => [0x63, ...enc.encode(`${module}\n${name}\n`)];
export const tuple = (ns: number[]) => [0x28, ...ns.flatMap(int), 0x74];
export const pickle = (...ops: (number | number[])[]) => new Uint8Array([0x80, 2, ...ops.flat(), 0x2e]);

/** `_rebuild_tensor_v2(storage "0" of `numel` elements, offset, size, stride, ...)` on the stack, as torch.save writes it. */
export const tensorOps = (
  storage: string,
  numel: number,
  offset: number,
  size: number[],
  stride: number[],
  key = "0",
) =>
  [
    global("torch._utils", "_rebuild_tensor_v2"),
    0x28,
    0x28,
    str("storage"),
    global("torch", storage),
    str(key),
    str("cpu"),
    int(numel),
    0x74,
    0x51,
    int(offset),
    tuple(size),
    tuple(stride),
    0x89,
    global("collections", "OrderedDict"),
    0x29,
    0x52,
    0x74,
    0x52,
  ].flat();

/** `{"w": tensor}` pickled as torch.save does, over storage "0" of `numel` elements. */
export const tensorPickle = (storage: string, numel: number, offset: number, size: number[], stride: number[]) =>
  pickle(0x7d, 0x28, str("w"), tensorOps(storage, numel, offset, size, stride), 0x75);

export const floats = (values: number[], littleEndian = true) => {
  const b = new Uint8Array(values.length * 4);
  values.forEach((v, i) => new DataView(b.buffer).setFloat32(i * 4, v, littleEndian));
  return b;
};

export interface RawEntry {
  name: string;
  data: Uint8Array;
  /** 0 stored (default), 8 deflated: `data` is written as given either way. */
  method?: number;
  /** What the headers state; default: the data's length for both. */
  size?: number;
  compressedSize?: number;
  /** What the local header states, when it should disagree with the central directory. */
  localSize?: number;
}

/** A zip archive written byte by byte, with whatever sizes the entries state. */
export function rawZip(entries: RawEntry[]): Uint8Array {
  const parts: Uint8Array[] = [],
    central: number[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = [...enc.encode(e.name)];
    const method = e.method ?? 0,
      compressed = e.compressedSize ?? e.data.length,
      size = e.size ?? e.data.length;
    const local = new Uint8Array([
      ...u32(0x04034b50),
      ...u16(20),
      ...u16(0),
      ...u16(method),
      ...u16(0),
      ...u16(0),
      ...u32(0),
      ...u32(compressed),
      ...u32(e.localSize ?? size),
      ...u16(name.length),
      ...u16(0),
      ...name,
    ]);
    central.push(
      ...u32(0x02014b50),
      ...u16(20),
      ...u16(20),
      ...u16(0),
      ...u16(method),
      ...u16(0),
      ...u16(0),
      ...u32(0),
      ...u32(compressed),
      ...u32(size),
      ...u16(name.length),
      ...u16(0),
      ...u16(0),
      ...u16(0),
      ...u16(0),
      ...u32(0),
      ...u32(offset),
      ...name,
    );
    parts.push(local, e.data);
    offset += local.length + e.data.length;
  }
  parts.push(
    new Uint8Array(central),
    new Uint8Array([
      ...u32(0x06054b50),
      ...u16(0),
      ...u16(0),
      ...u16(entries.length),
      ...u16(entries.length),
      ...u32(central.length),
      ...u32(offset),
      ...u16(0),
    ]),
  );
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

/** A torch.save-style archive of `files` (relative to `archive/`), stored unless an entry says otherwise. */
export const torchZip = (files: Record<string, Uint8Array | string | Omit<RawEntry, "name">>) =>
  rawZip(
    Object.entries(files).map(([k, v]) => ({
      name: `archive/${k}`,
      ...(v instanceof Uint8Array || typeof v === "string" ? { data: typeof v === "string" ? enc.encode(v) : v } : v),
    })),
  );

/**
 * A raw DEFLATE stream (one fixed-Huffman block) that inflates to `length` zero bytes: a literal 0, then copies of
 * 258 bytes at distance 1, 13 bits each — about 160 times smaller than its output.
 */
export function deflatedZeros(length: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((3 + 8 + Math.ceil(length / 258) * 13 + 7 + 8 * 10) / 8) + 8);
  let bit = 0;
  const put = (value: number, n: number) => {
    for (let i = 0; i < n; i++, bit++) if ((value >> i) & 1) out[bit >> 3]! |= 1 << (bit & 7);
  };
  // Huffman codes go most significant bit first; put() writes least significant first, so reverse them.
  const code = (value: number, n: number) => {
    let r = 0;
    for (let i = 0; i < n; i++) r |= ((value >> i) & 1) << (n - 1 - i);
    put(r, n);
  };
  put(1, 1);
  put(1, 2); // BFINAL, fixed Huffman
  code(0x30, 8); // literal 0
  let left = length - 1;
  for (; left >= 258; left -= 258) {
    code(0xc5, 8);
    code(0, 5);
  } // length 258 (code 285), distance 1
  for (; left > 0; left--) code(0x30, 8);
  code(0, 7); // end of block
  return out.subarray(0, Math.ceil(bit / 8));
}
