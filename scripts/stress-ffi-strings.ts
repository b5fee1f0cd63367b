// Why holdEncodedStrings exists, measured: shader modules created while every TextEncoder call forces a full
// GC and refills freed memory, without and with the guard; prints how many modules Dawn found broken.
//   bun scripts/stress-ffi-strings.ts [modules=150]
// The count without the guard varies from run to run (a GC must land between packing and the FFI call).
import { holdEncodedStrings } from "@textcraftor/webgpu-kernels/internal";
import { openDevice } from "@textcraftor/core";

const n = Number(process.argv[2] ?? 150);
const { device } = await openDevice();
const code =
  `@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(1) fn main() { x[0] = 1.0; }` + "\n// padding".repeat(20);
const proto = TextEncoder.prototype,
  encode = proto.encode;
let junk: Uint8Array[] = [];
proto.encode = function (this: TextEncoder, input?: string) {
  const bytes = encode.call(this, input);
  Bun.gc(true);
  if (junk.length > 20_000) junk = [];
  for (let i = 0; i < 50; i++) junk.push(new Uint8Array(code.length).fill(0));
  return bytes;
};
device.onuncapturederror = () => {}; // counted through error scopes below
for (const guard of [false, true]) {
  let broken = 0;
  for (let i = 0; i < n; i++) {
    device.pushErrorScope("validation");
    const make = () =>
      device.createComputePipeline({
        layout: "auto",
        compute: {
          module: device.createShaderModule({ code: `${code}// ${i} ${guard}`, label: `m${i}` }),
          entryPoint: "main",
        },
        label: `p${i}`,
      });
    guard ? holdEncodedStrings(make) : make();
    if (await device.popErrorScope()) broken++;
  }
  console.log(`${guard ? "with" : "without"} holdEncodedStrings: ${broken} of ${n} shader modules broken`);
}
proto.encode = encode;
