import { describe, expect, test } from "bun:test";
import { join, resolve } from "node:path";
import { openDevice, selfTest, DeviceError } from "../src/index.ts";
import { classifyAdapter } from "../src/internal.ts";

const root = resolve(import.meta.dir, "../../..");
const bin = (name: string) => join(root, "node_modules/.bin", name);

describe("openDevice under Bun", () => {
  test("opens an adapter, reports it, and a kernel writes values that read back exactly", async () => {
    const gpu = await openDevice();
    expect(gpu.info.runtime).toBe("bun");
    expect(gpu.info.binding).toBe("bun-webgpu");
    expect(["cpu", "gpu"]).toContain(gpu.info.kind);
    expect(gpu.info.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    for (const n of [1, 3, 77, 4097]) expect(await selfTest(gpu, n)).toEqual({ ok: true, mismatches: 0 });
    gpu.destroy();
  });

  test("refuses Dawn's null backend with an explanation", async () => {
    const attempt = openDevice({ backend: "null" });
    await expect(attempt).rejects.toBeInstanceOf(DeviceError);
    await expect(openDevice({ backend: "null" })).rejects.toThrow(/null backend.*\n.*setup\.sh/s);
  });

  test("a required GPU refuses the CPU driver", async () => {
    const gpu = await openDevice();
    const isCPU = gpu.info.isCPU;
    gpu.destroy();
    if (isCPU) await expect(openDevice({ requireGPU: true })).rejects.toThrow(/GPU was required/);
    else expect((await openDevice({ requireGPU: true })).info.kind).toBe("gpu");
  });
});

describe("adapter classification", () => {
  const base = { vendor: "", architecture: "", device: "", description: "", isFallbackAdapter: false };
  test("lavapipe is a CPU adapter even when dawn.node flags it as fallback", () => {
    expect(
      classifyAdapter({
        ...base,
        vendor: "mesa",
        architecture: "software",
        device: "llvmpipe-llvm-15",
        isFallbackAdapter: true,
      }),
    ).toBe("cpu");
  });
  test("the null backend is recognised by name or by backend type", () => {
    expect(classifyAdapter({ ...base, device: "null-backend" })).toBe("null");
    expect(classifyAdapter({ ...base, device: "x", backendType: 1 })).toBe("null");
  });
  test("SwiftShader is an unexpected fallback; an NVIDIA adapter is a GPU", () => {
    expect(
      classifyAdapter({ ...base, vendor: "google", device: "SwiftShader Device (Subzero)", isFallbackAdapter: true }),
    ).toBe("fallback");
    expect(classifyAdapter({ ...base, vendor: "nvidia", description: "NVIDIA H100 80GB HBM3", adapterType: 1 })).toBe(
      "gpu",
    );
  });
});

/** Bundles the self-test entry for another runtime (Node cannot run TypeScript; Deno cannot import our workspace). */
async function bundle(target: "node" | "browser"): Promise<string> {
  // Inside node_modules so that the bundle resolves `webgpu` from the workspace's packages.
  const outdir = join(root, "node_modules/.cache/textcraftor-smoke", target);
  const result = await Bun.build({
    entrypoints: [join(import.meta.dir, "runtimes/self-test-entry.ts")],
    outdir,
    target,
    format: "esm",
    naming: "[name].mjs",
    external: ["bun-webgpu", "webgpu"],
  });
  if (!result.success) throw new AggregateError(result.logs, "bundle failed");
  return result.outputs[0]!.path;
}

function run(cmd: string[], cwd = root) {
  const p = Bun.spawnSync(cmd, {
    cwd,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? "/tmp" },
  });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

function lastJson(out: string) {
  const line = out
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .pop();
  if (!line) throw new Error(`no JSON line in output:\n${out}`);
  return JSON.parse(line);
}

describe("the same openDevice in other runtimes", () => {
  test("Node (dawn.node) runs the self-test kernel", async () => {
    const file = await bundle("node");
    const r = run(["node", file]);
    expect(r.code, r.err).toBe(0);
    expect(lastJson(r.out)).toMatchObject({ runtime: "node", binding: "webgpu (dawn.node)", ok: true, mismatches: 0 });
  });

  test("Deno (--unstable-webgpu) runs the self-test kernel", async () => {
    const file = await bundle("browser");
    const r = run([bin("deno"), "run", "--unstable-webgpu", "--allow-env", "--allow-read", file]);
    expect(r.code, r.err).toBe(0);
    expect(lastJson(r.out)).toMatchObject({ runtime: "deno", binding: "navigator.gpu", ok: true, mismatches: 0 });
  });
});
