/**
 * Fuzzing the safetensors reader (issue #19): mutated reference files (header length, JSON, data region) and
 * generated headers with random entries (known and unknown dtypes, odd shapes, offsets that tile, overlap, leave
 * gaps or run past the end, metadata of any type). Property: tensors that fill their shapes, or a SafetensorsError.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { readSafetensors, SafetensorsError } from "../src/io/safetensors.ts";
import { readSafetensorsFile } from "../src/io/safetensors-file.ts";
import {
  collecting,
  expectPeakRiseBelow,
  peakMemory,
  expectTyped,
  FUZZ_SEED,
  fuzzParameters,
  mutate,
  mutationsArb,
} from "./fuzz-mutations.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(join(import.meta.dir, "fixtures/io", name)));
const FILES = ["reference.safetensors", "reference-f16.safetensors", "reference-f32.safetensors"].map(fixture);

type Read = (
  bytes: Uint8Array,
  options: { integers: boolean; skipUnsupported: boolean },
) => Promise<ReturnType<typeof readSafetensors>>;

async function check(read: Read, bytes: Uint8Array, integers: boolean): Promise<"read" | "refused"> {
  let result: Awaited<ReturnType<Read>>;
  try {
    result = await read(bytes, { integers, skipUnsupported: true });
  } catch (e) {
    expectTyped(e, SafetensorsError);
    return "refused";
  }
  for (const [name, t] of result.tensors) {
    if (t.data.length !== t.shape.reduce((a, b) => a * b, 1))
      throw new Error(`tensor ${name}: ${t.data.length} values for shape [${t.shape}]`);
  }
  // Each value comes from at least one byte of the file.
  const values = [...result.tensors.values()].reduce((n, t) => n + t.data.length, 0);
  if (values > bytes.length) throw new Error(`${values} values from a ${bytes.length}-byte file`);
  return "read";
}

const inMemory: Read = async (bytes, options) => readSafetensors(bytes, options);

/** A file from a header value and a data region of `dataBytes` bytes. */
function file(header: unknown, dataBytes: number): Uint8Array {
  const text = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + text.length + dataBytes).fill(0x3c, 8 + text.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  return out;
}

const DTYPES = [
  "F64",
  "F32",
  "F16",
  "BF16",
  "I64",
  "I32",
  "I16",
  "I8",
  "U8",
  "BOOL",
  "U64",
  "U32",
  "U16",
  "F8_E4M3",
  "F8_E5M2",
  "F42",
  "",
  7,
];
const countArb = fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constantFrom(-1, 1.5, 2 ** 31, 2 ** 53, "3", null));
const entryArb = fc.record(
  {
    dtype: fc.constantFrom(...DTYPES),
    shape: fc.oneof(fc.array(countArb, { maxLength: 4 }), fc.constantFrom(null, "2", {})),
    /** Where the entry starts relative to the previous one's end: 0 tiles, others overlap or leave gaps. */
    shift: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: -8, max: 8 })),
    lengthError: fc.oneof(fc.constant(0), fc.constant(0), fc.constant(0), fc.integer({ min: -4, max: 4 })),
  },
  { requiredKeys: ["dtype", "shape", "shift", "lengthError"] },
);
const metadataArb = fc.option(
  fc.oneof(
    fc.dictionary(fc.string({ maxLength: 4 }), fc.oneof(fc.string({ maxLength: 4 }), fc.integer())),
    fc.string(),
    fc.integer(),
  ),
  { nil: undefined },
);
const headerArb = fc.record({
  entries: fc.array(entryArb, { maxLength: 8 }),
  metadata: metadataArb,
  trailing: fc.integer({ min: -2, max: 2 }),
});

type Header = typeof headerArb extends fc.Arbitrary<infer T> ? T : never;
const SIZES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

/** Lays the generated entries out mostly as a writer would, with the generated errors applied. */
function generated({ entries, metadata, trailing }: Header): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  let end = 0;
  entries.forEach(({ dtype, shape, shift, lengthError }, i) => {
    const count = Array.isArray(shape) ? shape.reduce<number>((a, b) => a * (typeof b === "number" ? b : 1), 1) : 1;
    const bytes = Math.min(Math.max(0, count * (SIZES[dtype as string] ?? 1) + lengthError), 4096);
    const begin = Math.max(0, end + shift);
    header[`t${i}`] = { dtype, shape, data_offsets: [begin, begin + bytes] };
    end = begin + bytes;
  });
  return file(header, Math.max(0, end + trailing));
}

const start = peakMemory();

describe("safetensors fuzzing", () => {
  test("mutated reference files: tensors that fill their shapes, or a SafetensorsError", async () => {
    const outcomes = { read: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.nat(FILES.length - 1),
        mutationsArb,
        fc.boolean(),
        collecting(async (i, mutations, integers) => {
          outcomes[await check(inMemory, mutate(FILES[i]!, mutations), integers)]++;
        }),
      ),
      fuzzParameters,
    );
    expect(outcomes.read).toBeGreaterThan(100);
    expect(outcomes.refused).toBeGreaterThan(100);
  }, 120_000);

  test("generated headers: tensors that fill their shapes, or a SafetensorsError", async () => {
    const outcomes = { read: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(
        headerArb,
        fc.boolean(),
        collecting(async (header, integers) => {
          outcomes[await check(inMemory, generated(header), integers)]++;
        }),
      ),
      fuzzParameters,
    );
    expect(outcomes.read).toBeGreaterThan(100);
    expect(outcomes.refused).toBeGreaterThan(100);
  }, 120_000);

  test("the reader from disk agrees on 500 generated and mutated files", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "fuzz-st-")), "f.safetensors");
    const fromDisk: Read = async (bytes, options) => {
      writeFileSync(path, bytes);
      return readSafetensorsFile(path, options);
    };
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          headerArb.map(generated),
          fc.tuple(fc.nat(FILES.length - 1), mutationsArb).map(([i, m]) => mutate(FILES[i]!, m)),
        ),
        async (bytes) => {
          const memory = await check(inMemory, bytes, true);
          expect(await check(fromDisk, bytes, true)).toBe(memory);
        },
      ),
      { seed: FUZZ_SEED, numRuns: 500 },
    );
  }, 120_000);

  test("no case allocated beyond its file: the suite raised the peak memory by under 512 MiB", () =>
    expectPeakRiseBelow(2 ** 29, start));
});
