/**
 * Fuzzing the restricted unpickler (issue #19): mutated pickles of plain values (protocols 2 and 4) and of a torch
 * state dict, and random byte streams. Property: a value, or a PickleError (UnsafePickleError for names outside
 * the allow-list); never another error, never a hang.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { unzipSync } from "fflate";
import { PickleError, unpickle, UnsafePickleError } from "../src/io/pickle.ts";
import {
  collecting,
  expectPeakRiseBelow,
  peakMemory,
  expectTyped,
  fuzzParameters,
  mutate,
  mutationsArb,
} from "./fuzz-mutations.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(join(import.meta.dir, "fixtures/io", name)));
const PICKLES = [
  fixture("values-p2.pkl"),
  fixture("values-p4.pkl"),
  unzipSync(fixture("checkpoint.pt"))["archive/data.pkl"]!,
];
// The state dict's globals resolve to plain stand-ins: what matters here is the opcode machinery, not torch.
const GLOBALS = new Map<string, unknown>([
  ["collections.OrderedDict", () => new Map()],
  ["torch._utils._rebuild_tensor_v2", (args: unknown[]) => args],
  ["torch.FloatStorage", "F32"],
  ["torch.HalfStorage", "F16"],
  ["torch.LongStorage", "I64"],
  ["torch.BFloat16Storage", "BF16"],
  ["torch.DoubleStorage", "F64"],
]);

function check(bytes: Uint8Array): "read" | "refused" | "unsafe" {
  try {
    unpickle(bytes, { globals: GLOBALS, persistentLoad: (pid) => pid });
    return "read";
  } catch (e) {
    expectTyped(e, PickleError);
    return e instanceof UnsafePickleError ? "unsafe" : "refused";
  }
}

const start = peakMemory();

describe("unpickler fuzzing", () => {
  test("mutated pickles: a value or a PickleError", () => {
    const outcomes = { read: 0, refused: 0, unsafe: 0 };
    fc.assert(
      fc.property(
        fc.nat(PICKLES.length - 1),
        mutationsArb,
        collecting((i, mutations) => {
          outcomes[check(mutate(PICKLES[i]!, mutations))]++;
        }),
      ),
      fuzzParameters,
    );
    expect(outcomes.read).toBeGreaterThan(100);
    expect(outcomes.refused).toBeGreaterThan(100);
  }, 120_000);

  test("random byte streams after a protocol header: a value or a PickleError", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.constantFrom(2, 4),
        collecting((body, protocol) => {
          check(new Uint8Array([0x80, protocol, ...body]));
        }),
      ),
      fuzzParameters,
    );
  }, 120_000);

  test("no case allocated beyond its file: the suite raised the peak memory by under 512 MiB", () =>
    expectPeakRiseBelow(2 ** 29, start));
});
