import { describe, expect, spyOn, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { float16BitsToNumber, float32ToFloat16Bits } from "../src/internal.ts";
import {
  readSafetensors,
  readSafetensorsFile,
  readSafetensorsHeader,
  SafetensorsError,
  type SafetensorsFile,
  writeFileAtomic,
  writeSafetensors,
} from "../src/io/index.ts";
import { readGroups } from "../src/io/safetensors-file.ts";

// Fixtures come from scripts/fixtures/io_fixtures.py: files written by hand from the published format
// (and F16 values rounded by numpy), so the reader and writer are checked against an independent writer.
const fixture = (name: string) => new Uint8Array(readFileSync(join(import.meta.dir, "fixtures/io", name)));
const expected = JSON.parse(readFileSync(join(import.meta.dir, "fixtures/io/expected.json"), "utf8"));

type Expected = { dtype?: string; shape: number[]; values: (number | string)[] };
const decode = (v: number | string) =>
  v === "nan" ? NaN : v === "inf" ? Infinity : v === "-inf" ? -Infinity : (v as number);

/** Bit-exact comparison: NaN matches NaN, and -0 must stay -0. */
function expectTensor(actual: { data: Float32Array; shape: number[]; dtype?: string } | undefined, want: Expected) {
  expect(actual).toBeDefined();
  expect(actual!.shape).toEqual(want.shape);
  if (want.dtype) expect(actual!.dtype).toBe(want.dtype as never);
  expect(actual!.data.length).toBe(want.values.length);
  want.values.forEach((v, i) => {
    if (!Object.is(actual!.data[i], decode(v))) throw new Error(`element ${i}: got ${actual!.data[i]}, expected ${v}`);
  });
}

/** A safetensors file from a header object (or raw header text) and a data region of `dataBytes` zeros. */
function file(header: unknown, dataBytes = 0): Uint8Array {
  const text = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + text.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  return out;
}

const f32 = (shape: number[], offsets: [number, number]) => ({ dtype: "F32", shape, data_offsets: offsets });

describe("reading files from an independent writer", () => {
  const ref = expected.reference;
  const bytes = fixture("reference.safetensors");

  test("an int64 tensor is refused by default, naming the tensor and its dtype", () => {
    expect(() => readSafetensors(bytes)).toThrow(
      /tensor "text_model.embeddings.position_ids" has dtype I64.*integers: true.*skipUnsupported: true/,
    );
  });

  test("with skipUnsupported the float tensors match and the int64 one is reported", () => {
    const { tensors, metadata, skipped } = readSafetensors(bytes, { skipUnsupported: true });
    expect(metadata).toEqual(ref.metadata);
    expect(skipped).toEqual(["text_model.embeddings.position_ids"]);
    expect([...tensors.keys()].sort()).toEqual(Object.keys(ref.tensors).sort());
    for (const [name, want] of Object.entries(ref.tensors)) expectTensor(tensors.get(name), want as Expected);
  });

  test("integers: true returns the int64 tensor as float32", () => {
    const { tensors, skipped } = readSafetensors(bytes, { integers: true });
    expect(skipped).toEqual([]);
    const [[name, want]] = Object.entries(ref.integers);
    expectTensor(tensors.get(name), want as Expected);
  });

  test("a names filter decodes only the chosen tensors and never trips on the others' dtypes", () => {
    const { tensors } = readSafetensors(bytes, { names: (n) => n.startsWith("b.") || n === "c.f32" });
    expect([...tensors.keys()].sort()).toEqual(["b.f16", "c.f32"]);
  });

  test("the header alone lists names, dtypes and shapes", () => {
    const full = readSafetensorsHeader(bytes);
    const prefix = bytes.slice(0, full.dataStart);
    const { tensors, metadata } = readSafetensorsHeader(prefix, bytes.length);
    expect(metadata).toEqual(ref.metadata);
    expect(tensors.get("text_model.embeddings.position_ids")).toEqual({
      dtype: "I64",
      shape: [1, 7],
      dataOffsets: [0, 56],
    });
    expect(tensors.get("e.scalar")?.shape).toEqual([]);
    expect(() => readSafetensorsHeader(bytes.slice(0, 20), bytes.length)).toThrow(
      /only 20 bytes were given.*pass at least the whole header/,
    );
  });
});

describe("reading from disk by tensor", () => {
  const dir = mkdtempSync(join(tmpdir(), "tc-st-file-"));

  test("gives what the in-memory reader gives, with the same options", async () => {
    for (const name of ["reference.safetensors", "reference-f16.safetensors", "reference-f32.safetensors"]) {
      const path = join(import.meta.dir, "fixtures/io", name);
      for (const options of [
        { skipUnsupported: true },
        { integers: true },
        { names: (n: string) => n.startsWith("b.") },
      ]) {
        // Plain arrays, so that NaN equals NaN and -0 differs from 0 (typed arrays compare otherwise).
        const plain = (f: SafetensorsFile) => ({
          ...f,
          tensors: [...f.tensors].map(([k, t]) => [k, t.shape, t.dtype, Array.from(t.data)]),
        });
        const fromDisk = await readSafetensorsFile(path, options).then(plain, (e: Error) => e.message);
        const inMemory = (() => {
          try {
            return plain(readSafetensors(fixture(name), options));
          } catch (e) {
            return (e as Error).message;
          }
        })();
        expect(fromDisk).toEqual(inMemory);
      }
    }
  });

  test("a file over 4 GiB (sparse) reads a tensor past the 4 GiB mark without reading the rest", async () => {
    // What one buffer cannot hold: a 4 GiB + 1 KiB U8 tensor (not a float, so skipped unread), then 4 floats.
    const big = 2 ** 32 + 1024;
    const header = new TextEncoder().encode(
      JSON.stringify({
        big: { dtype: "U8", shape: [big], data_offsets: [0, big] },
        small: { dtype: "F32", shape: [4], data_offsets: [big, big + 16] },
      }).padEnd(128, " "),
    );
    const path = join(dir, "huge.safetensors");
    const file = await open(path, "w");
    const length = new Uint8Array(8);
    new DataView(length.buffer).setBigUint64(0, BigInt(header.length), true);
    await file.write(length, 0, 8, 0);
    await file.write(header, 0, header.length, 8);
    await file.write(new Uint8Array(Float32Array.of(1.5, -2, 3.25, 1e-3).buffer), 0, 16, 8 + header.length + big);
    await file.close();
    const { tensors, skipped } = await readSafetensorsFile(path, { skipUnsupported: true });
    expect(skipped).toEqual(["big"]);
    expect(Array.from(tensors.get("small")!.data)).toEqual(Array.from(Float32Array.of(1.5, -2, 3.25, 1e-3)));
    rmSync(path);
  });

  test("a header length that claims terabytes is refused without allocating it", async () => {
    const path = join(dir, "claims.safetensors");
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setBigUint64(0, 2n ** 40n, true);
    writeFileSync(path, bytes);
    await expect(readSafetensorsFile(path)).rejects.toThrow("goes beyond the end of the file (16 bytes)");
  });

  test("errors name the file, file-system ones included", async () => {
    const path = join(dir, "trailing.safetensors");
    writeFileSync(path, file({ a: f32([1], [0, 4]) }, 8));
    await expect(readSafetensorsFile(path)).rejects.toThrow(
      `${path}: safetensors: the tensors end at byte 4 of the data region`,
    );
    for (const where of [join(dir, "missing.safetensors"), dir]) {
      await expect(readSafetensorsFile(where)).rejects.toThrow(SafetensorsError);
      await expect(readSafetensorsFile(where)).rejects.toThrow(`${where}: cannot read the file (`);
    }
  });

  test("20k small tensors are read in a handful of reads (not 20k), with the right values", async () => {
    const count = 20_000;
    const header: Record<string, unknown> = {};
    for (let i = 0; i < count; i++)
      header[`t${i}`] =
        i % 2 ? { dtype: "F16", shape: [1], data_offsets: [i * 4, i * 4 + 2] } : f32([1], [i * 4, i * 4 + 4]);
    // Every odd tensor is F16 (2 bytes) followed by 2 bytes of a U8 pair, so data types and skips mix.
    for (let i = 1; i < count; i += 2)
      header[`u${i}`] = { dtype: "U8", shape: [2], data_offsets: [i * 4 + 2, i * 4 + 4] };
    const bytes = file(header, count * 4);
    const data = new DataView(bytes.buffer, bytes.length - count * 4);
    for (let i = 0; i < count; i++) {
      if (i % 2) data.setUint16(i * 4, float32ToFloat16Bits(i), true);
      else data.setFloat32(i * 4, i, true);
    }
    const path = join(dir, "many.safetensors");
    writeFileSync(path, bytes);
    const handle = await open(path, "r");
    const read = spyOn(Object.getPrototypeOf(handle), "read");
    await handle.close();
    try {
      const { tensors, skipped } = await readSafetensorsFile(path, { skipUnsupported: true });
      expect(read.mock.calls.length).toBeLessThan(10);
      expect(tensors.size).toBe(count);
      expect(skipped.length).toBe(count / 2);
      for (const i of [0, 1, 2, 9_999, 19_998, 19_999])
        expect(tensors.get(`t${i}`)!.data[0]).toBe(i % 2 ? float16BitsToNumber(float32ToFloat16Bits(i)) : i);
    } finally {
      read.mockRestore();
    }
  });

  test("reads are grouped by data order: small neighbours share one, big tensors and far-apart ones do not", () => {
    const e = (begin: number, end: number) => ({
      dtype: "U8" as const,
      shape: [end - begin],
      dataOffsets: [begin, end] as [number, number],
    });
    const MiB = 2 ** 20;
    const groups = readGroups([
      e(16, 32),
      e(0, 16),
      e(32, 10 * MiB),
      e(10 * MiB, 10 * MiB + 8),
      e(11 * MiB, 11 * MiB + 8),
      e(11 * MiB + 100, 11 * MiB + 200),
    ]);
    expect(groups).toEqual([
      { begin: 0, end: 32, members: [1, 0] },
      { begin: 32, end: 10 * MiB, members: [2] },
      { begin: 10 * MiB, end: 10 * MiB + 8, members: [3] },
      { begin: 11 * MiB, end: 11 * MiB + 200, members: [4, 5] },
    ]);
  });
});

describe("the writer lays files out as the reference implementation does", () => {
  const { inputs, metadata } = expected.written;
  const tensors = new Map(
    Object.entries(inputs as Record<string, Expected>).map(([k, v]) => [
      k,
      {
        data: Float32Array.from(v.values, decode),
        shape: v.shape,
      },
    ]),
  );

  test("F32: byte for byte", () => {
    expect(writeSafetensors(tensors, { metadata })).toEqual(fixture("reference-f32.safetensors"));
  });

  test("F16: byte for byte with numpy's rounding (subnormals, overflow to inf, NaN)", () => {
    expect(writeSafetensors(tensors, { dtype: "F16", metadata })).toEqual(fixture("reference-f16.safetensors"));
  });

  test("names sorted, offsets contiguous, header space-padded to 8 bytes", () => {
    const out = writeSafetensors(
      new Map([
        ["z", { data: new Float32Array(3), shape: [3] }],
        ["a", { data: new Float32Array([1]), shape: [] }],
      ]),
    );
    const n = Number(new DataView(out.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const text = new TextDecoder().decode(out.subarray(8, 8 + n));
    expect(text.trimEnd()).toBe(
      '{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"z":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}}',
    );
    expect(text.slice(text.trimEnd().length)).toMatch(/^ *$/);
    expect(out.length).toBe(8 + n + 16);
  });
});

describe("round trips", () => {
  /** Values spread over every float32 magnitude (random bit patterns), plus the special cases. */
  function awkwardValues(count: number): Float32Array {
    let seed = 12345;
    const bits = new Uint32Array(count);
    for (let i = 0; i < count; i++) bits[i] = seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    const out = new Float32Array(bits.buffer);
    out.set([
      0,
      -0,
      65504,
      65519.99,
      65520,
      -65520,
      2 ** -24,
      2 ** -25,
      2 ** -25 * 1.0001,
      3 * 2 ** -26,
      2 ** -14,
      Infinity,
      -Infinity,
      NaN,
    ]);
    return out;
  }

  test("F32 is exact", () => {
    const data = awkwardValues(1000);
    const back = readSafetensors(writeSafetensors(new Map([["x", { data, shape: [10, 100] }]]))).tensors.get("x")!;
    expect(back.shape).toEqual([10, 100]);
    expect(new Uint32Array(back.data.buffer)).toEqual(new Uint32Array(data.buffer));
  });

  test("F16 equals rounding each value with Math.f16round", () => {
    const data = awkwardValues(100_000);
    const back = readSafetensors(
      writeSafetensors(new Map([["x", { data, shape: [data.length] }]]), { dtype: "F16" }),
    ).tensors.get("x")!;
    expect(back.dtype).toBe("F16");
    for (let i = 0; i < data.length; i++) {
      if (!Object.is(back.data[i], Math.f16round(data[i])))
        throw new Error(`${data[i]} -> ${back.data[i]}, expected ${Math.f16round(data[i])}`);
    }
  });

  test("every half bit pattern decodes as Float16Array does and re-encodes to itself", () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const reference = new Float16Array(all.buffer);
    for (let h = 0; h < 65536; h++) {
      const v = float16BitsToNumber(h);
      if (!Object.is(v, reference[h])) throw new Error(`0x${h.toString(16)}: ${v} vs ${reference[h]}`);
      if (!Number.isNaN(v) && float32ToFloat16Bits(v) !== h)
        throw new Error(`0x${h.toString(16)} re-encodes differently`);
    }
  });
});

describe("validation errors say what is wrong", () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ["file shorter than the length field", new Uint8Array(4), /4 bytes, too short to hold the 8-byte header length/],
    [
      "header length beyond the file",
      (() => {
        const b = file("{}");
        new DataView(b.buffer).setBigUint64(0, 1000n, true);
        return b;
      })(),
      /header length \(1000 bytes\) goes beyond the end of the file \(10 bytes\)/,
    ],
    ["header not JSON", file("{not json"), /header is not valid UTF-8 JSON/],
    [
      "header not UTF-8",
      file(String.fromCharCode(0x7b, 0x22)).map((b, i) => (i === 9 ? 0xff : b)),
      /header is not valid UTF-8 JSON/,
    ],
    ["header an array", file("[1, 2]"), /header JSON is an array, not an object/],
    ["header null", file("null"), /header JSON is null, not an object/],
    ["header a number", file("42"), /header JSON is a number, not an object/],
    ["entry not an object", file({ a: 3 }), /tensor "a": the entry is not an object/],
    ["dtype missing", file({ a: { shape: [], data_offsets: [0, 4] } }, 4), /tensor "a": dtype is missing/],
    [
      "unknown dtype",
      file({ a: { dtype: "F42", shape: [1], data_offsets: [0, 4] } }, 4),
      /tensor "a" has unknown dtype "F42"; known: F64, F32/,
    ],
    [
      "negative shape",
      file({ a: f32([-1], [0, 4]) }, 4),
      /tensor "a": shape \[-1\] is not a list of non-negative integers/,
    ],
    ["fractional shape", file({ a: f32([1.5], [0, 4]) }, 4), /shape \[1.5\] is not a list/],
    [
      "offsets reversed",
      file({ a: f32([1], [4, 0]) }, 4),
      /tensor "a": data_offsets \[4,0\] is not a \[begin, end\] pair/,
    ],
    [
      "byte size not dtype × shape",
      file({ a: f32([2], [0, 4]) }, 4),
      /tensor "a": data_offsets \[0, 4\] span 4 bytes, but F32 with shape \[2\] takes 8/,
    ],
    [
      "offsets out of range",
      file({ a: f32([2], [0, 8]) }, 4),
      /tensor "a": data_offsets \[0, 8\] go beyond the data region \(4 bytes\)/,
    ],
    [
      "overlapping tensors",
      file({ a: f32([2], [0, 8]), b: f32([2], [4, 12]) }, 12),
      /tensor "b" \(bytes 4..12\) overlaps tensor "a" \(ending at 8\)/,
    ],
    [
      "a gap between tensors",
      file({ a: f32([1], [0, 4]), b: f32([1], [8, 12]) }, 12),
      /bytes 4..8 of the data region belong to no tensor \(before "b"\)/,
    ],
    [
      "trailing bytes",
      file({ a: f32([1], [0, 4]) }, 8),
      /tensors end at byte 4 of the data region, but it has 8 bytes/,
    ],
    [
      "metadata not strings",
      file({ __metadata__: { step: 3 } }),
      /"__metadata__" entry "step" is 3; metadata values must be strings/,
    ],
    ["metadata not an object", file({ __metadata__: "pt" }), /"__metadata__" must be an object of strings/],
    // Error messages describe such values instead of serializing them (JSON.stringify overflowed the stack).
    [
      "a shape nested 200k deep",
      file(`{"a": {"dtype": "F32", "shape": ${"[".repeat(200_000)}${"]".repeat(200_000)}, "data_offsets": [0, 0]}}`),
      /tensor "a": shape a list of 1 item is not a list of non-negative integers/,
    ],
    [
      "metadata nested 200k deep",
      file(`{"__metadata__": {"k": ${"[".repeat(200_000)}${"]".repeat(200_000)}}}`),
      /"__metadata__" entry "k" is a list of 1 item;/,
    ],
    [
      "a shape of a million dims",
      file(`{"a": {"dtype": "F32", "shape": [${"1,".repeat(1_000_000)}-1], "data_offsets": [0, 0]}}`),
      /tensor "a": shape a list of 1000001 items is not a list of non-negative integers$/,
    ],
  ];
  const dir = mkdtempSync(join(tmpdir(), "tc-st-bad-"));
  for (const [i, [what, bytes, message]] of cases.entries()) {
    test(what, async () => {
      expect(() => readSafetensors(bytes)).toThrow(SafetensorsError);
      expect(() => readSafetensors(bytes)).toThrow(message);
      // The reader from disk validates the same header bytes, so it fails the same way.
      const path = join(dir, `${i}.safetensors`);
      writeFileSync(path, bytes);
      await expect(readSafetensorsFile(path)).rejects.toThrow(message);
    });
  }

  test("a dtype with no float32 conversion names the tensor and offers the ways out", () => {
    const bytes = file({ q: { dtype: "F8_E4M3", shape: [2], data_offsets: [0, 2] } }, 2);
    expect(() => readSafetensors(bytes)).toThrow(
      /tensor "q" has dtype F8_E4M3, which is not read as float32; pass `skipUnsupported: true`/,
    );
    expect(() => readSafetensors(bytes, { integers: true })).toThrow(/F8_E4M3/);
    expect(readSafetensors(bytes, { skipUnsupported: true }).skipped).toEqual(["q"]);
  });

  test("the writer refuses values that do not fit the shape, a reserved name, and non-string metadata", () => {
    const one = { data: new Float32Array(3), shape: [2, 2] };
    expect(() => writeSafetensors(new Map([["w", one]]))).toThrow(/tensor "w" has 3 values but shape \[2,2\] needs 4/);
    expect(() => writeSafetensors(new Map([["__metadata__", { data: new Float32Array(1), shape: [1] }]]))).toThrow(
      /"__metadata__" is reserved/,
    );
    expect(() => writeSafetensors(new Map(), { metadata: { step: 3 as unknown as string } })).toThrow(
      /metadata "step" is a number/,
    );
  });
});

describe("writeFileAtomic", () => {
  test("replaces the file whole and leaves no temporary behind", async () => {
    const dir = mkdtempSync(join(tmpdir(), "io-atomic-"));
    const path = join(dir, "model.safetensors");
    writeFileSync(path, "old");
    await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    expect(new Uint8Array(readFileSync(path))).toEqual(new Uint8Array([1, 2, 3]));
    expect(readdirSync(dir)).toEqual(["model.safetensors"]);
  });

  test("a failed write throws and leaves nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "io-atomic-"));
    const path = join(dir, "missing-folder", "model.safetensors");
    await expect(writeFileAtomic(path, new Uint8Array(4))).rejects.toThrow(/ENOENT/);
    expect(existsSync(`${path}.tmp-${process.pid}`)).toBe(false);
  });
});
