import { describe, expect, test } from "bun:test";
import { join, resolve } from "node:path";
import { openDevice, listAdapters, selfTest, DeviceError } from "../src/index.ts";
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

describe("choosing the adapter under Bun (Dawn's native list)", () => {
  test("the list leaves out the null backend; index 0 is the adapter Dawn picks by itself", async () => {
    const { binding, adapters } = await listAdapters();
    expect(binding).toBe("bun-webgpu");
    expect(adapters!.length).toBeGreaterThan(0);
    expect(adapters!.map((a) => a.kind)).not.toContain("null");
    // With only the null backend asked for, nothing usable is listed (the backend reaches Dawn's options).
    expect((await listAdapters({ backend: "null" })).adapters).toEqual([]);
    const own = await openDevice();
    expect(own.info).toMatchObject({ adapterIndex: null, chosenBy: "the binding" });
    expect(own.info.adapter.name).toBe(adapters![0]!.name);
    own.destroy();
  });

  test("--device N opens the listed adapter N, which runs kernels; one past the last fails with the list", async () => {
    const { adapters } = await listAdapters();
    const last = adapters!.length - 1;
    const gpu = await openDevice({ device: last });
    expect(gpu.info).toMatchObject({ adapterIndex: last, chosenBy: "--device" });
    expect(gpu.info.adapter.name).toBe(adapters![last]!.name);
    expect(await selfTest(gpu, 4097)).toEqual({ ok: true, mismatches: 0 });
    gpu.destroy();
    const outOfRange = openDevice({ device: adapters!.length });
    await expect(outOfRange).rejects.toBeInstanceOf(DeviceError);
    await expect(openDevice({ device: adapters!.length })).rejects.toThrow(
      new RegExp(
        `--device ${adapters!.length}: there (is|are) ${adapters!.length} adapters?.*\n {3}0 {2}.*${adapters![0]!.vendor}`,
        "s",
      ),
    );
  });

  test("under an MPI launcher without --device, the local rank (modulo the GPUs found) picks the adapter", async () => {
    const { adapters } = await listAdapters();
    const saved = { ...process.env };
    Object.assign(process.env, {
      OMPI_COMM_WORLD_SIZE: "4",
      OMPI_COMM_WORLD_RANK: "3",
      OMPI_COMM_WORLD_LOCAL_RANK: "3",
    });
    try {
      const gpu = await openDevice();
      const gpus = adapters!.flatMap((a, i) => (a.kind === "gpu" ? [i] : []));
      const pool = gpus.length ? gpus : adapters!.map((_, i) => i);
      expect(gpu.info).toMatchObject({ adapterIndex: pool[3 % pool.length], chosenBy: "the MPI local rank" });
      gpu.destroy();
      process.env.TEXTCRAFTOR_DEVICE = "0";
      const pinned = await openDevice();
      expect(pinned.info).toMatchObject({ adapterIndex: 0, chosenBy: "TEXTCRAFTOR_DEVICE" });
      pinned.destroy();
    } finally {
      for (const key of [
        "OMPI_COMM_WORLD_SIZE",
        "OMPI_COMM_WORLD_RANK",
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "TEXTCRAFTOR_DEVICE",
      ])
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
    }
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

function run(cmd: string[], env: Record<string, string> = {}, cwd = root) {
  const p = Bun.spawnSync(cmd, {
    cwd,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? "/tmp", ...env },
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

  test("Node (dawn.node) opens a listed adapter by index and refuses one past the last with the list", async () => {
    const file = await bundle("node");
    const chosen = run(["node", file], { TEXTCRAFTOR_DEVICE: "0" });
    expect(chosen.code, chosen.err).toBe(0);
    expect(lastJson(chosen.out)).toMatchObject({ binding: "webgpu (dawn.node)", adapterIndex: 0, ok: true });
    const { adapters } = await listAdapters();
    const refused = run(["node", file], { TEXTCRAFTOR_DEVICE: String(adapters!.length) });
    expect(refused.code).not.toBe(0);
    expect(refused.err).toMatch(
      /TEXTCRAFTOR_DEVICE \d+: there (is|are) \d+ adapters? \(webgpu \(dawn\.node\)\):\n {3}0 {2}/,
    );
  });

  test("Deno (--unstable-webgpu) runs the self-test kernel", async () => {
    const file = await bundle("browser");
    const r = run([bin("deno"), "run", "--unstable-webgpu", "--allow-env", "--allow-read", file]);
    expect(r.code, r.err).toBe(0);
    expect(lastJson(r.out)).toMatchObject({ runtime: "deno", binding: "navigator.gpu", ok: true, mismatches: 0 });
  });

  test("Deno's navigator.gpu shows one adapter: index 1 is refused with the way to choose from outside", async () => {
    const file = await bundle("browser");
    const r = run([bin("deno"), "run", "--unstable-webgpu", "--allow-env", "--allow-read", file], {
      TEXTCRAFTOR_DEVICE: "1",
    });
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("navigator.gpu shows only the adapter it picks itself");
    expect(r.err).toContain("--gpus-per-task=1");
  });
});
