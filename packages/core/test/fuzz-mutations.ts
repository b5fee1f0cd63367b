/**
 * Seeded mutations of valid files for the reader fuzz suites: bit flips, truncation, inserted junk, and edits of
 * 32-bit fields right after a structure's signature (zip headers) or anywhere, with the values that break size
 * arithmetic (0, 1, all ones, 2^31). Each suite asserts that a reader returns a valid result or throws its own
 * typed error: never a raw engine error, never a hang, never an allocation beyond the file's bytes.
 */
import fc from "fast-check";
import { expect } from "bun:test";

/** Every suite runs at least this many cases, from a fixed seed: a failure reproduces on any machine. */
export const FUZZ_RUNS = 10_000;
export const FUZZ_SEED = 19;

export type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "truncate"; at: number }
  | { kind: "insert"; at: number; junk: Uint8Array }
  | { kind: "field"; signature: number; field: number; value: number }
  | { kind: "u32"; at: number; value: number };

const EDGE_VALUES = [0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0xffff, 0x10000];

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    junk: fc.uint8Array({ minLength: 1, maxLength: 32 }),
  }),
  fc.record({
    kind: fc.constant("field" as const),
    signature: fc.nat(),
    field: fc.integer({ min: 0, max: 19 }),
    value: fc.oneof(fc.constantFrom(...EDGE_VALUES), fc.nat()),
  }),
  fc.record({
    kind: fc.constant("u32" as const),
    at: fc.nat(),
    value: fc.oneof(fc.constantFrom(...EDGE_VALUES), fc.nat()),
  }),
);

export const mutationsArb = fc.array(mutationArb, { minLength: 1, maxLength: 4 });

/** Where each zip structure starts (local and central headers, end records): size fields sit at fixed offsets after. */
function signatures(bytes: Uint8Array): number[] {
  const at: number[] = [];
  for (let i = 0; i + 4 <= bytes.length; i++) {
    if (bytes[i] === 0x50 && bytes[i + 1] === 0x4b && [1, 3, 5, 6].includes(bytes[i + 2]!)) at.push(i);
  }
  return at;
}

/** The mutated copy; positions wrap around the current length, so every case edits the file somewhere. */
export function mutate(original: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let bytes = original.slice();
  for (const m of mutations) {
    if (!bytes.length) return bytes;
    const at = "at" in m ? m.at % bytes.length : 0;
    switch (m.kind) {
      case "flip":
        bytes[at]! ^= 1 << m.bit;
        break;
      case "truncate":
        bytes = bytes.slice(0, at);
        break;
      case "insert":
        bytes = new Uint8Array([...bytes.subarray(0, at), ...m.junk, ...bytes.subarray(at)]);
        break;
      case "u32":
        setU32(bytes, at, m.value);
        break;
      case "field": {
        const found = signatures(bytes);
        // Without a structure, the 8-byte length prefix (safetensors) is the one size field there is.
        const start = found.length ? found[m.signature % found.length]! + 4 + 2 * m.field : m.field % 2 ? 4 : 0;
        setU32(bytes, start, m.value);
        break;
      }
    }
  }
  return bytes;
}

function setU32(bytes: Uint8Array, at: number, value: number): void {
  for (let i = 0; i < 4 && at + i < bytes.length; i++) bytes[at + i] = (value >>> (8 * i)) & 255;
}

/** A thrown value must be the reader's own error type; anything else (RangeError, TypeError, fflate's) fails the case. */
export function expectTyped(error: unknown, type: new (...args: never[]) => Error): void {
  if (!(error instanceof type))
    throw new Error(`expected a ${type.name}, got ${(error as Error)?.name}: ${(error as Error)?.message}`, {
      cause: error,
    });
  expect((error as Error).message.length).toBeGreaterThan(10);
}

export const fuzzParameters = { seed: FUZZ_SEED, numRuns: FUZZ_RUNS };

/**
 * A property's predicate that collects garbage every 1,000 cases, so that the peak-memory check below sees what
 * cases allocate and hold, not the garbage of thousands of cases awaiting a lazy collection.
 */
export function collecting<A extends unknown[], R>(predicate: (...args: A) => R): (...args: A) => R {
  let cases = 0;
  return (...args) => {
    if (++cases % 1000 === 0) Bun.gc(true);
    return predicate(...args);
  };
}

/** The peak resident memory of this process so far, in bytes. */
export const peakMemory = () => process.resourceUsage().maxRSS * 1024;

/**
 * How far a suite raised the process's peak resident memory: a case that allocated far beyond its file's bytes,
 * even briefly, leaves its mark there. Files are kilobytes; a suite alone peaks at 70-120 MiB.
 */
export function expectPeakRiseBelow(bytes: number, since: number): void {
  const rise = peakMemory() - since;
  if (rise >= bytes)
    throw new Error(
      `the suite raised the peak memory by ${(rise / 2 ** 20).toFixed(0)} MiB, over ${(bytes / 2 ** 20).toFixed(0)} MiB`,
    );
}
