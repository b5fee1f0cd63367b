/**
 * Where `navigator.gpu` comes from in each JavaScript runtime. Kept apart from `openDevice` so that the
 * runtime-specific imports stay dynamic: `bun-webgpu` needs `bun:ffi`, `webgpu` is a Node addon that
 * crashes Bun (see shared/FACTS.md), and Deno/browsers need neither.
 */
export type Runtime = "bun" | "node" | "deno" | "browser";
export type BindingName = "bun-webgpu" | "webgpu (dawn.node)" | "navigator.gpu";

/** Backends a caller may ask for. `null` exists to prove that `openDevice` refuses it. */
export type BackendRequest = "default" | "vulkan" | "metal" | "d3d12" | "null";

export interface Binding {
  name: BindingName;
  gpu: GPU;
  /** Options to merge into `requestAdapter` (binding-specific backend selection). */
  adapterOptions: Record<string, unknown>;
}

export function detectRuntime(): { runtime: Runtime; version: string } {
  const g = globalThis as Record<string, any>;
  if (g.Bun) return { runtime: "bun", version: g.Bun.version };
  if (g.Deno) return { runtime: "deno", version: g.Deno.version.deno };
  if (g.process?.versions?.node) return { runtime: "node", version: g.process.versions.node };
  return { runtime: "browser", version: g.navigator?.userAgent ?? "unknown" };
}

const bunBackend: Record<BackendRequest, string | undefined> = {
  default: undefined,
  vulkan: "Vulkan",
  metal: "Metal",
  d3d12: "D3D12",
  null: "Null",
};

export async function loadBinding(runtime: Runtime, backend: BackendRequest, dawnToggles: string[]): Promise<Binding> {
  const g = globalThis as Record<string, any>;
  // Dawn's Vulkan loader prints errors at every start without it; any writable directory does.
  if (g.process?.env && !g.process.env.XDG_RUNTIME_DIR && runtime !== "browser") g.process.env.XDG_RUNTIME_DIR = "/tmp";
  if (runtime === "bun") {
    const mod = await import("bun-webgpu");
    await mod.setupGlobals();
    const backendType = bunBackend[backend];
    return { name: "bun-webgpu", gpu: g.navigator.gpu, adapterOptions: backendType ? { backendType } : {} };
  }
  if (runtime === "node") {
    const mod: any = await import("webgpu");
    Object.assign(globalThis, mod.globals);
    const flags = [...(backend !== "default" ? [`backend=${backend}`] : [])];
    if (dawnToggles.length) flags.push(`enable-dawn-features=${dawnToggles.join(",")}`);
    return { name: "webgpu (dawn.node)", gpu: mod.create(flags), adapterOptions: {} };
  }
  if (!g.navigator?.gpu) {
    throw new Error(
      runtime === "deno"
        ? "Deno exposes WebGPU only with --unstable-webgpu: run `deno run --unstable-webgpu ...`."
        : "This browser has no navigator.gpu: use a browser with WebGPU enabled.",
    );
  }
  if (backend !== "default") throw new Error(`backend "${backend}" can only be chosen under Bun or Node (Dawn)`);
  return { name: "navigator.gpu", gpu: g.navigator.gpu, adapterOptions: {} };
}
