/**
 * Fuzzing the torch checkpoint reader (issue #19): mutated torch.save files (zip structure, pickle, deflate
 * streams) and generated pickles of allowed opcodes and globals. Property: a checkpoint whose tensors match their
 * shapes and stay within the view budget, or a TorchCheckpointError; never another error, never a hang.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { readTorchCheckpoint, TorchCheckpointError } from "../src/io/torch-zip.ts";
import {
  collecting,
  expectPeakRiseBelow,
  peakMemory,
  expectTyped,
  fuzzParameters,
  mutate,
  mutationsArb,
} from "./fuzz-mutations.ts";
import { global, int, str, torchZip } from "./io-builders.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(join(import.meta.dir, "fixtures/io", name)));
const FILES = ["checkpoint.pt", "checkpoint-p4.pt", "checkpoint-zip64.pt", "malicious.pth"].map(fixture);

/** What a successful read must satisfy: every tensor fills its shape, and all of them fit the file's budget. */
async function check(bytes: Uint8Array, options: { integers?: boolean } = {}): Promise<"read" | "refused"> {
  let result: Awaited<ReturnType<typeof readTorchCheckpoint>>;
  try {
    result = await readTorchCheckpoint(bytes, options);
  } catch (e) {
    expectTyped(e, TorchCheckpointError);
    return "refused";
  }
  let values = 0;
  for (const [name, t] of result.tensors) {
    if (t.data.length !== t.shape.reduce((a, b) => a * b, 1))
      throw new Error(`tensor ${name}: ${t.data.length} values for shape [${t.shape}]`);
    values += t.data.length;
  }
  // Stored elements are at most the file's bytes (1 byte each at the least) plus the repeat budget.
  if (values > bytes.length * 1032 + Math.max(64 * bytes.length, 2 ** 22))
    throw new Error(`${values} values from a ${bytes.length}-byte file`);
  return "read";
}

const start = peakMemory();

describe("torch checkpoint fuzzing", () => {
  test("mutated torch.save files: a valid checkpoint or a TorchCheckpointError", async () => {
    const outcomes = { read: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.nat(FILES.length - 1),
        mutationsArb,
        fc.boolean(),
        collecting(async (file, mutations, integers) => {
          outcomes[await check(mutate(FILES[file]!, mutations), { integers })]++;
        }),
      ),
      fuzzParameters,
    );
    // Both outcomes occur: mutations that miss what the reader checks, and ones it must refuse.
    expect(outcomes.read).toBeGreaterThan(100);
    expect(outcomes.refused).toBeGreaterThan(100);
  }, 120_000);

  // Opcodes with well-formed arguments, in random order: exercises the memo (shared and cyclic containers), deep
  // nesting, malformed reduce arguments, and tensors with random sizes, strides and offsets over a real storage.
  const opArb = fc.oneof(
    fc.constantFrom(
      [0x28],
      [0x7d],
      [0x5d],
      [0x29],
      [0x74],
      [0x85],
      [0x86],
      [0x87],
      [0x4e],
      [0x88],
      [0x89],
      [0x73],
      [0x75],
      [0x61],
      [0x65],
      [0x52],
      [0x81],
      [0x62],
      [0x51],
      [0x94],
    ),
    fc.integer({ min: 0, max: 300 }).map(int),
    fc.constantFrom(0, 2, 4, 16, 2 ** 20, 2 ** 31 - 1).map((n) => int(n)),
    fc.constantFrom("storage", "0", "1", "cpu", "w", "state_dict").map(str),
    fc.integer({ min: 0, max: 7 }).map((i) => [0x71, i]),
    fc.integer({ min: 0, max: 7 }).map((i) => [0x68, i]),
    fc
      .constantFrom(
        ["torch._utils", "_rebuild_tensor_v2"],
        ["torch._utils", "_rebuild_parameter"],
        ["collections", "OrderedDict"],
        ["torch", "FloatStorage"],
        ["torch", "HalfStorage"],
        ["torch", "LongStorage"],
        ["torch", "Size"],
        ["torch", "float16"],
      )
      .map(([module, name]) => global(module!, name!)),
  );
  const storage = new Uint8Array(64).map((_, i) => i * 37);

  test("generated pickles over a 64-byte storage: a valid checkpoint or a TorchCheckpointError", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { maxLength: 60 }),
        collecting(async (ops) => {
          const pkl = new Uint8Array([0x80, 2, ...ops.flat(), 0x2e]);
          await check(torchZip({ "data.pkl": pkl, "data/0": storage, "data/1": storage.subarray(0, 16) }), {
            integers: true,
          });
        }),
      ),
      fuzzParameters,
    );
  }, 120_000);

  test("no case allocated beyond its file: the suite raised the peak memory by under 512 MiB", () =>
    expectPeakRiseBelow(2 ** 29, start));
});
