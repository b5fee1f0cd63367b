/** holdEncodedStrings: a scoped wrapper around TextEncoder, restored however `fn` ends. */
import { expect, test } from "bun:test";
import { holdEncodedStrings, holdPackedArguments } from "../src/ffi-strings.ts";

test("encoding is unchanged inside, and TextEncoder is restored after a return or a throw", () => {
  const original = TextEncoder.prototype.encode;
  const inside = holdEncodedStrings(() => {
    expect(TextEncoder.prototype.encode).not.toBe(original);
    return new TextEncoder().encode("main");
  });
  expect(Array.from(inside)).toEqual([109, 97, 105, 110]);
  expect(TextEncoder.prototype.encode).toBe(original);
  expect(() =>
    holdEncodedStrings(() => {
      throw new Error("shader failed");
    }),
  ).toThrow("shader failed");
  expect(TextEncoder.prototype.encode).toBe(original);
});

test("holdPackedArguments records the ArrayBuffers and strings made while the call packs, and restores ArrayBuffer", async () => {
  const Original = globalThis.ArrayBuffer;
  let seenInside = false;
  const value = await holdPackedArguments(async () => {
    seenInside = globalThis.ArrayBuffer !== Original;
    const b = new ArrayBuffer(8);
    expect(b).toBeInstanceOf(Original);
    expect(b.byteLength).toBe(8);
    return 42;
  });
  expect(value).toBe(42);
  expect(seenInside).toBe(true);
  expect(globalThis.ArrayBuffer).toBe(Original);
  await expect(
    holdPackedArguments(() => {
      throw new Error("no adapter");
    }),
  ).rejects.toThrow("no adapter");
  expect(globalThis.ArrayBuffer).toBe(Original);
});
