/**
 * Keeps the bytes of strings handed to the WebGPU binding alive through the call that reads them.
 *
 * bun-webgpu packs a descriptor's strings (shader code, labels, entry points) as `ptr(encoder.encode(s))`:
 * the encoded bytes are referenced only by their address, so a garbage collection between the packing and
 * the FFI call can free them, and Dawn then reads garbage ("error: null character found" at 1:1 of a shader,
 * which failed about one test-suite run in five). `bun scripts/stress-ffi-strings.ts` measures it. While `fn`
 * runs, every TextEncoder result is also held here, until `fn` has returned.
 */
export function holdEncodedStrings<T>(fn: () => T): T {
  const proto = TextEncoder.prototype;
  const encode = proto.encode;
  const held: Uint8Array[] = [];
  proto.encode = function (this: TextEncoder, input?: string) {
    const bytes = encode.call(this, input);
    held.push(bytes);
    return bytes;
  };
  // The wrapper, reachable from the prototype while `fn` runs, keeps `held` and its bytes alive.
  try {
    return fn();
  } finally {
    proto.encode = encode;
  }
}
