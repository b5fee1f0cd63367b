/**
 * Feature sets read under bun-webgpu survive a garbage collection in the middle of the read: its own getter
 * reads the enums back from an array a GC may have freed (the "Invalid enum value: 1243138560" traces and an
 * empty feature set), stableFeatures holds its buffers.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as T from "../src/index.ts";
import { stableFeatures } from "../src/device/bun-features.ts";

let gpu: T.Gpu;
beforeAll(async () => {
  gpu = await T.openDevice();
});
afterAll(() => gpu.destroy());

/** Runs `read` while every DataView construction forces a full GC and refills freed memory with a float. */
async function underGcPressure<R>(read: () => R | Promise<R>): Promise<{ result: R; errors: number }> {
  const RealDataView: DataViewConstructor = DataView,
    quiet = console.error;
  let junk: Float32Array[] = [],
    errors = 0;
  globalThis.DataView = new Proxy(RealDataView, {
    construct(target, args) {
      Bun.gc(true);
      for (let i = 0; i < 200; i++) junk.push(new Float32Array(128).fill(2503296));
      return Reflect.construct(target, args);
    },
  });
  console.error = () => {
    errors++;
  };
  try {
    const result = await read();
    return { result, errors };
  } finally {
    globalThis.DataView = RealDataView;
    console.error = quiet;
    junk = [];
  }
}

test("openDevice records the device's features, and a read under GC pressure gives the same set without errors", async () => {
  expect(gpu.info.features).toContain("core-features-and-limits");
  for (let i = 0; i < 5; i++) {
    const { result, errors } = await underGcPressure(() => stableFeatures(gpu.device));
    expect(errors).toBe(0);
    expect([...result].sort()).toEqual(gpu.info.features);
  }
  // What it replaces: bun-webgpu's getter under the same pressure loses the set and prints stack traces.
  const device = gpu.device as GPUDevice & { _features: unknown };
  const { result, errors } = await underGcPressure(() => {
    device._features = null;
    return device.features;
  });
  expect([...result]).toEqual([]);
  expect(errors).toBeGreaterThan(0);
  await stableFeatures(gpu.device); // leaves the getter's cache right for later readers
  expect([...gpu.device.features].sort()).toEqual(gpu.info.features);
});
