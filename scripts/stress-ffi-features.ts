// Why device/bun-features.ts exists, measured: bun-webgpu's `device.features` getter read while every DataView
// it makes forces a full GC and refills freed memory, then the same through stableFeatures; prints how many
// reads came back wrong (empty or not the device's features).
//   bun scripts/stress-ffi-features.ts [reads=50]
import { openDevice } from "@textcraftor/core";
import { stableFeatures } from "@textcraftor/core/internal";

const n = Number(process.argv[2] ?? 50);
const gpu = await openDevice();
const device = gpu.device as GPUDevice & { _features: unknown };
const expected = JSON.stringify(gpu.info.features);
const RealDataView: DataViewConstructor = DataView;
let junk: Float32Array[] = [];
let stress = false;
globalThis.DataView = new Proxy(RealDataView, {
  construct(target, args) {
    if (stress) {
      Bun.gc(true);
      if (junk.length > 20_000) junk = [];
      for (let i = 0; i < 200; i++) junk.push(new Float32Array(128).fill(2503296)); // the float behind 1243138560
    }
    return Reflect.construct(target, args);
  },
});
const quiet = console.error;
for (const [label, readFeatures] of [
  [
    "bun-webgpu's getter",
    () => {
      device._features = null;
      return device.features;
    },
  ],
  ["stableFeatures", () => stableFeatures(device)],
] as const) {
  let wrong = 0,
    errors = 0;
  console.error = () => {
    errors++;
  };
  for (let i = 0; i < n; i++) {
    stress = true;
    const read = await readFeatures();
    stress = false;
    if (JSON.stringify([...read].sort()) !== expected) wrong++;
  }
  console.error = quiet;
  console.log(`${label}: ${wrong} of ${n} reads wrong, ${errors} error messages`);
}
globalThis.DataView = RealDataView;
