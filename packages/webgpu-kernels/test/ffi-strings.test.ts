/** holdEncodedStrings: a scoped wrapper around TextEncoder, restored however `fn` ends. */
import { expect, test } from "bun:test";
import { holdEncodedStrings } from "../src/ffi-strings.ts";

test("encoding is unchanged inside, and TextEncoder is restored after a return or a throw", () => {
  const original = TextEncoder.prototype.encode;
  const inside = holdEncodedStrings(() => {
    expect(TextEncoder.prototype.encode).not.toBe(original);
    return new TextEncoder().encode("main");
  });
  expect(Array.from(inside)).toEqual([109, 97, 105, 110]);
  expect(TextEncoder.prototype.encode).toBe(original);
  expect(() => holdEncodedStrings(() => { throw new Error("shader failed"); })).toThrow("shader failed");
  expect(TextEncoder.prototype.encode).toBe(original);
});
