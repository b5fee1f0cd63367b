/** `bun run cli info`: what the machine offers, the kernel family chosen, and a self-test kernel. */
import { expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
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

test("info lists every adapter with the index --device takes; one past the last is refused with that list (exit 4)", () => {
  const listed = JSON.parse(cli("info", "--json").out);
  expect(listed.adapters.length).toBeGreaterThan(0);
  expect(listed.adapters.map((a: { kind: string }) => a.kind)).not.toContain("null");
  const r = cli("info", "--device", "0");
  expect(r.code, r.err).toBe(0);
  expect(r.out).toContain(`adapter   ${listed.adapters[0].name} (index 0, from --device)`);
  expect(r.out).toContain("adapters  --device N or TEXTCRAFTOR_DEVICE=N chooses");
  expect(r.out).toContain(`   0  ${listed.adapters[0].name} (`);
  expect(r.out).toMatch(/ {2}← in use/);
  const beyond = String(listed.adapters.length);
  for (const command of [
    ["info", "--device", beyond],
    ["train", "--dry-run", "--device", beyond],
  ]) {
    const refused = cli(...command);
    expect(refused.code, refused.err + refused.out).toBe(4);
    expect(refused.err).toContain(`--device ${beyond}: there`);
    expect(refused.err).toContain(`   0  ${listed.adapters[0].name} (`);
  }
});

test("train --device 0 runs (a dry run: the memory plan on the chosen adapter)", () => {
  const run = `${tmpdir()}/textcraftor-device-${process.pid}`;
  try {
    const r = cli("train", "--dry-run", "--run-dir", run, "--device", "0");
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/peak/i);
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
});
