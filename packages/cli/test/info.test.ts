/** `bun run cli info`: what the machine offers, the kernel family chosen, and a self-test kernel. */
import { expect, test } from "bun:test";
import { cli, cliWithEnv } from "./cli.ts";

test("info shows the adapter, key limits and the kernel family, and its self-test passes", () => {
  const r = cli("info");
  expect(r.code, r.err + r.out).toBe(0);
  for (const line of ["runtime   bun", "binding   bun-webgpu", "maxStorageBufferBindingSize", "self-test passed"])
    expect(r.out).toContain(line);
  expect(r.out).toMatch(/kernels {3}(CPU-driver variants|tiled GPU variants)/);
  expect(r.out).toMatch(
    /precision f32 math everywhere; f16 weights \(--mixed-precision fp16\) read (as f16 \(shader-f16\)|through unpack2x16float)/,
  );
  expect(r.out).toMatch(/tensors {3}past \d+ MiB are bound in windows \(at most \d+ storage bindings per kernel\)/);
});

test("info --json carries every limit, the kernel family (TEXTCRAFTOR_KERNELS overrides it) and the self-test", () => {
  const r = cli("info", "--json");
  expect(r.code, r.err).toBe(0);
  const info = JSON.parse(r.out);
  expect(info.selfTest.ok).toBe(true);
  expect(info.limits.maxComputeWorkgroupsPerDimension).toBeGreaterThanOrEqual(65535);
  expect(info.kernels).toBe(info.isCPU ? "cpu" : "gpu");
  const forced = JSON.parse(cliWithEnv({ TEXTCRAFTOR_KERNELS: info.isCPU ? "gpu" : "cpu" }, "info", "--json").out);
  expect(forced.kernels).toBe(info.isCPU ? "gpu" : "cpu");
  const bad = cliWithEnv({ TEXTCRAFTOR_KERNELS: "fast" }, "info");
  expect(bad.code).toBe(1);
  expect(bad.err + bad.out).toContain('TEXTCRAFTOR_KERNELS is "fast": use "gpu"');
});
