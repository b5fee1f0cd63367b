// Entry bundled for Node and Deno by device.test.ts: opens the device through the same openDevice and
// prints the self-test result as one JSON line.
import { openDevice, selfTest } from "../../src/index.ts";

const gpu = await openDevice();
const result = await selfTest(gpu, 4097);
console.log(
  JSON.stringify({
    runtime: gpu.info.runtime,
    binding: gpu.info.binding,
    kind: gpu.info.kind,
    adapter: gpu.info.adapter.name,
    adapterIndex: gpu.info.adapterIndex,
    ...result,
  }),
);
gpu.destroy();
