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

/**
 * The same for a call whose descriptor holds arrays (requestDevice's required features and limits): bun-webgpu
 * packs each array into a fresh ArrayBuffer kept only by its address, so a collection before Dawn reads it made
 * the device request fail about once in a dozen opens ("Invalid feature required: Value 560"). While `fn` packs
 * and calls, every ArrayBuffer and encoded string made is recorded, and the records live until its promise settles.
 */
export async function holdPackedArguments<T>(fn: () => Promise<T>): Promise<T> {
  const Original = globalThis.ArrayBuffer;
  const held: ArrayBuffer[] = [];
  globalThis.ArrayBuffer = new Proxy(Original, {
    construct(target, args, newTarget) {
      const buffer = Reflect.construct(target, args, newTarget) as ArrayBuffer;
      held.push(buffer);
      return buffer;
    },
  });
  let pending: Promise<T>;
  try {
    pending = holdEncodedStrings(fn);
  } finally {
    globalThis.ArrayBuffer = Original;
  }
  const result = await pending;
  held.length = 0; // referenced until here, so alive while the binding may read
  return result;
}
