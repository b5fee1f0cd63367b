/**
 * The one place that talks to the GPU queue for kernels: a pipeline cache, one shared command encoder
 * whose dispatches are submitted in batches, and a uniform-parameter arena.
 *
 * Parameters: each dispatch gets a 256-byte slot in a CPU-side arena; at `flush()` the arena is written
 * with one `writeBuffer` and the batch submitted. Queue operations are ordered, so the next batch may reuse
 * the arena right away: its `writeBuffer` lands after the previous submit in the queue timeline.
 */
import { holdEncodedStrings } from "./ffi-strings.ts";
import { rewriteStorageBindings, type F16Mode, type RewrittenKernel, type StorageLayout } from "./storage-bindings.ts";

export type ParamValue = number | { f32: number } | { i32: number };

export interface Dispatch {
  /** Pipeline cache key: the family name plus every specialization parameter baked into the WGSL. */
  key: string;
  /** The WGSL source; called once per key. Binding 0 is `var<uniform> p: Params` when `params` is given, storage buffers follow. */
  wgsl: () => string;
  buffers: GPUBuffer[];
  /** Scalars in the order of the WGSL `Params` struct: a plain number is u32. */
  params?: ParamValue[];
  /** A total count (folded into 2-D above the per-dimension limit: read it with `foldedIndex`) or an explicit grid. */
  workgroups: number | [number, number, number];
}

/** WGSL helper for kernels launched with a total workgroup count: the linear workgroup index. */
export const FOLDED_INDEX = /* wgsl */ `
fn foldedIndex(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y; }
`;

const SLOT = 256; // >= minUniformBufferOffsetAlignment everywhere (256 is WebGPU's maximum)
const SLOTS = 2048;

export class KernelRunner {
  readonly limits: Record<string, number>;
  readonly features: Set<string>;
  private readonly pipelines = new Map<
    string,
    {
      pipeline: GPUComputePipeline;
      layout: GPUBindGroupLayout;
      windows?: Map<number, number[]>;
      code: string;
      createSeconds: number;
    }
  >();
  /** Bind groups recorded since the last submit, released after it (see `flush`). */
  private recorded: GPUBindGroup[] = [];
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private readonly arena: GPUBuffer;
  private readonly arenaData = new ArrayBuffer(SLOT * SLOTS);
  private readonly arenaU32 = new Uint32Array(this.arenaData);
  private readonly arenaF32 = new Float32Array(this.arenaData);
  private readonly arenaI32 = new Int32Array(this.arenaData);
  private slots = 0;
  /** Number of submitted batches; buffers freed in batch `n` are safe for CPU writes once this exceeds `n`. */
  batch = 0;
  dispatches = 0;
  /** Dispatches that bound a buffer in windows (past the binding limit) or read f16 storage. */
  rewrittenDispatches = 0;

  /**
   * Workgroups that keep the device busy: a large GPU has ~100+ compute units (an H100 132 SMs); a CPU driver
   * runs a handful of workgroups at once, and splitting work further (split-K, chunked sums) only adds passes.
   */
  readonly wave: number;
  /** A CPU driver (lavapipe): kernels whose GPU form is slow to compile there pick simpler variants. */
  readonly cpu: boolean;
  /** How kernels read f16 storage: as `f16` where the device has `shader-f16`, else unpacked from u32 pairs. */
  readonly f16Mode: F16Mode;
  /** Reductions combine within a subgroup first (`subgroupAdd`, …) where the device has `subgroups`. */
  readonly subgroups: boolean;
  /** Scratch buffers by purpose (see `scratch`), and outgrown ones awaiting the submit of the batch that used them. */
  private readonly scratchBuffers = new Map<string, GPUBuffer>();
  private retired: GPUBuffer[] = [];
  /** Buffers that hold f16 values (frozen weights); every other buffer holds 32-bit elements. */
  private readonly f16Buffers = new WeakSet<GPUBuffer>();

  constructor(
    readonly device: GPUDevice,
    limits?: Record<string, number>,
    features?: Iterable<string>,
    { cpu = false, f16Mode, subgroups }: { cpu?: boolean; f16Mode?: F16Mode; subgroups?: boolean } = {},
  ) {
    // Every kernel variant is chosen from these few fields, set here from the adapter's features and limits.
    this.cpu = cpu;
    this.wave = cpu ? 16 : 128;
    this.limits = limits ?? readLimits(device);
    this.features = new Set(features ?? [...device.features].map(String));
    this.f16Mode = f16Mode ?? (this.features.has("shader-f16") ? "native" : "packed");
    this.subgroups = subgroups ?? this.features.has("subgroups");
    this.arena = device.createBuffer({ size: SLOT * SLOTS, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  }

  get maxWorkgroupsPerDimension() {
    return this.limits.maxComputeWorkgroupsPerDimension ?? 65535;
  }
  get maxBindingBytes() {
    return this.limits.maxStorageBufferBindingSize ?? 134217728;
  }
  get maxStorageBindings() {
    return this.limits.maxStorageBuffersPerShaderStage ?? 8;
  }

  /**
   * Window size for buffers past the binding limit: the largest multiple of the storage offset alignment
   * (and of 16 bytes, so vec4 elements never straddle two windows) that the adapter binds.
   */
  get segmentBytes() {
    const align = Math.max(16, this.limits.minStorageBufferOffsetAlignment ?? 256);
    return Math.floor(this.maxBindingBytes / align) * align;
  }

  /** Bytes per element of `buffer` as kernels index it: 2 for f16 storage, 4 otherwise (f32, u32, i32). */
  elementBytes(buffer: GPUBuffer): number {
    return this.f16Buffers.has(buffer) ? 2 : 4;
  }

  /** Declares that `buffer` holds f16 values (true) or 32-bit ones again (false, e.g. when it returns to a pool). */
  markF16(buffer: GPUBuffer, f16: boolean): void {
    if (f16) this.f16Buffers.add(buffer);
    else this.f16Buffers.delete(buffer);
  }

  pipeline(key: string, wgsl: () => string): GPUComputePipeline {
    return this.compiled(key, wgsl).pipeline;
  }

  /**
   * The pipeline and its bind group layout, fetched once: each getBindGroupLayout call may hand out a new reference.
   * `wgsl` returns the code, or the code rewritten for windowed/f16 bindings with the binding numbers of each window.
   */
  private compiled(key: string, wgsl: () => string | RewrittenKernel) {
    let p = this.pipelines.get(key);
    if (!p) {
      const start = performance.now();
      const source = wgsl();
      const code = typeof source === "string" ? source : source.code;
      // Both calls hand strings to the binding (code, label, entry point): see holdEncodedStrings.
      const pipeline = holdEncodedStrings(() => {
        const module = this.device.createShaderModule({ code, label: key });
        return this.device.createComputePipeline({
          layout: "auto",
          compute: { module, entryPoint: "main" },
          label: key,
        });
      });
      p = {
        pipeline,
        layout: pipeline.getBindGroupLayout(0),
        windows: typeof source === "string" ? undefined : source.windows,
        code,
        createSeconds: (performance.now() - start) / 1000,
      };
      this.pipelines.set(key, p);
    }
    return p;
  }

  /**
   * Every pipeline created so far: its key, its WGSL and how long its creation took. On lavapipe the creation
   * is not the compile: the driver JIT-compiles a shader at its first dispatch, on the queue's thread, and a
   * creation first waits for the queued work (bench/shader-jit.ts replays the list to time the two apart).
   */
  pipelineSources(): PipelineSource[] {
    return [...this.pipelines].map(([key, { code, createSeconds, windows }]) => ({
      key,
      code,
      createSeconds,
      windows: windows && [...windows],
    }));
  }

  /**
   * Compiles ahead of use: creates each pipeline of `sources` this runner lacks (another runner's
   * `pipelineSources()`, e.g. the memory plan's meta device, which ran the same kernels) and submits one dispatch
   * of each with every uniform 0 and stand-in buffers. Every kernel bounds-checks against its sizes, so such a
   * dispatch touches nothing; drivers that JIT a shader at its first dispatch (lavapipe) then compile on their
   * queue's thread while the caller goes on, e.g. loading weights. Returns how many pipelines it created.
   */
  warmUp(sources: readonly Pick<PipelineSource, "key" | "code" | "windows">[]): number {
    const fresh = sources.filter((s) => !this.pipelines.has(s.key));
    if (!fresh.length) return 0;
    const zeros = this.device.createBuffer({ size: SLOT, usage: GPUBufferUsage.UNIFORM });
    // One stand-in per binding position, shared across dispatches: within a dispatch no two writable bindings alias.
    const standIns = new Map<number, GPUBuffer>();
    const standIn = (i: number) => {
      let b = standIns.get(i);
      if (!b) standIns.set(i, (b = this.device.createBuffer({ size: 1024, usage: GPUBufferUsage.STORAGE })));
      return b;
    };
    const pass = this.computePass();
    for (const s of fresh) {
      const windows = s.windows && new Map(s.windows);
      const { pipeline, layout } = this.compiled(s.key, () => (windows ? { code: s.code, windows } : s.code));
      const bindings = [...s.code.matchAll(/@binding\((\d+)\)\s*var<(uniform|storage)/g)];
      const entries = bindings.map(([, binding, kind], i) => ({
        binding: Number(binding),
        resource: {
          buffer: kind === "uniform" ? zeros : standIn(i),
        },
      }));
      const bindGroup = this.device.createBindGroup({ layout, entries });
      this.recorded.push(bindGroup);
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(1);
    }
    this.retired.push(zeros, ...standIns.values());
    this.flush();
    return fresh.length;
  }

  run(d: Dispatch): void {
    const first = d.params ? 1 : 0;
    const layouts = this.storageLayouts(d, first);
    const key = layouts ? `${d.key}|${layoutKey(layouts, this.f16Mode)}` : d.key;
    if (layouts) this.rewrittenDispatches++;
    const { pipeline, layout, windows } = this.compiled(key, layouts ? () => this.rewritten(d, layouts) : d.wgsl);
    if (d.params && this.slots === SLOTS) this.flush();
    const entries: GPUBindGroupEntry[] = [];
    if (d.params) {
      const base = (this.slots * SLOT) / 4;
      if (d.params.length > SLOT / 4)
        throw new Error(`${d.key}: ${d.params.length} params exceed the ${SLOT / 4}-word slot`);
      d.params.forEach((v, i) => {
        if (typeof v === "number") this.arenaU32[base + i] = v;
        else if ("f32" in v) this.arenaF32[base + i] = v.f32;
        else this.arenaI32[base + i] = v.i32;
      });
      entries.push({ binding: 0, resource: { buffer: this.arena, offset: this.slots * SLOT, size: SLOT } });
      this.slots++;
    }
    d.buffers.forEach((buffer, i) => {
      const numbers = windows?.get(first + i);
      if (!numbers) return entries.push({ binding: first + i, resource: { buffer } });
      const step = this.segmentBytes;
      numbers.forEach((binding, s) =>
        entries.push({ binding, resource: { buffer, offset: s * step, size: Math.min(step, buffer.size - s * step) } }),
      );
    });
    const bindGroup = this.device.createBindGroup({ layout, entries });
    this.recorded.push(bindGroup);
    const [x, y, z] = this.grid(d.workgroups, d.key);
    const pass = this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.dispatches++;
  }

  /** Bindings that need windows or f16 reads, or null when every buffer binds whole as declared (the common case). */
  private storageLayouts(d: Dispatch, first: number): Map<number, StorageLayout> | null {
    let layouts: Map<number, StorageLayout> | null = null,
      bindings = d.buffers.length;
    d.buffers.forEach((buffer, i) => {
      const f16 = this.f16Buffers.has(buffer);
      const segments = buffer.size > this.maxBindingBytes ? Math.ceil(buffer.size / this.segmentBytes) : 1;
      if (!f16 && segments === 1) return;
      (layouts ??= new Map()).set(first + i, { segments, segmentBytes: this.segmentBytes, f16 });
      bindings += segments - 1;
    });
    if (bindings > this.maxStorageBindings) {
      const sizes = d.buffers.map((b) => mib(b.size)).join(", ");
      throw new Error(
        `${d.key}: its buffers (${sizes}) need ${bindings} storage bindings of at most ${mib(this.maxBindingBytes)}, ` +
          `but this adapter allows ${this.maxStorageBindings} per kernel (\`bun run cli info\` lists the limits): ` +
          "lower the batch size or the resolution, or use a GPU with a larger storage binding limit",
      );
    }
    return layouts;
  }

  private rewritten(d: Dispatch, layouts: Map<number, StorageLayout>) {
    return rewriteStorageBindings(d.wgsl(), layouts, this.f16Mode, d.key);
  }

  /** Folds a total workgroup count into 2-D (or 3-D) within the per-dimension limit. */
  grid(w: Dispatch["workgroups"], key = "kernel"): [number, number, number] {
    const max = this.maxWorkgroupsPerDimension;
    if (typeof w !== "number") {
      if (w.some((v) => v > max)) throw new Error(`${key}: grid ${w} exceeds ${max} workgroups per dimension`);
      return w;
    }
    const n = Math.max(1, Math.ceil(w));
    if (n <= max) return [n, 1, 1];
    const y = Math.ceil(n / max);
    if (y <= max) return [Math.ceil(n / y), y, 1];
    const z = Math.ceil(y / max);
    return [max, Math.ceil(n / (max * z)), z];
  }

  /**
   * A runner-owned buffer of at least `bytes` for one purpose's intermediate results (split-K partials, chunked
   * sums). Dispatches run in queue order, so every dispatch may reuse it. An outgrown buffer may still be bound
   * by commands not yet submitted: it is retired and destroyed after the next submit (WebGPU keeps a destroyed
   * buffer alive for work already submitted).
   */
  scratch(purpose: string, bytes: number): GPUBuffer {
    const current = this.scratchBuffers.get(purpose);
    if (current && current.size >= bytes) return current;
    if (current) this.retired.push(current);
    const buffer = this.device.createBuffer({
      size: Math.max(16, Math.ceil(bytes / 16) * 16),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
      label: `${purpose} scratch`,
    });
    this.scratchBuffers.set(purpose, buffer);
    return buffer;
  }

  /** Commands outside compute passes (buffer copies, clears) go through this encoder. */
  commandEncoder(): GPUCommandEncoder {
    this.endPass();
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  /** Submits everything encoded so far. */
  flush(): void {
    if (!this.encoder && this.slots === 0) return;
    this.endPass();
    if (this.slots) this.device.queue.writeBuffer(this.arena, 0, this.arenaData, 0, this.slots * SLOT);
    if (this.encoder) this.device.queue.submit([this.encoder.finish()]);
    // The submitted commands hold their own references. bun-webgpu frees a bind group only through its
    // non-standard destroy() (it has no finalizer), and a long run leaks one per dispatch until the process
    // crashes; the other bindings collect them with the GPUBindGroup object.
    for (const group of this.recorded) (group as { destroy?: () => void }).destroy?.();
    this.recorded = [];
    for (const buffer of this.retired) buffer.destroy();
    this.retired = [];
    this.encoder = null;
    this.slots = 0;
    this.batch++;
  }

  /** Copies `bytes` of `buffer` back to the CPU; the only synchronisation point. */
  async read(buffer: GPUBuffer, bytes = buffer.size, offset = 0): Promise<ArrayBuffer> {
    const staging = this.device.createBuffer({
      size: align4(bytes),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.commandEncoder().copyBufferToBuffer(buffer, offset, staging, 0, align4(bytes));
    this.flush();
    await staging.mapAsync(GPUMapMode.READ);
    const out = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    staging.destroy();
    return out;
  }

  async readF32(buffer: GPUBuffer, length: number): Promise<Float32Array> {
    return new Float32Array(await this.read(buffer, length * 4));
  }

  private computePass(): GPUComputePassEncoder {
    if (!this.pass) this.pass = (this.encoder ??= this.device.createCommandEncoder()).beginComputePass();
    return this.pass;
  }

  private endPass() {
    this.pass?.end();
    this.pass = null;
  }
}

/** A pipeline as a runner created it: enough to create it again on another runner (see `warmUp`). */
export interface PipelineSource {
  key: string;
  code: string;
  createSeconds: number;
  /** For code rewritten for bindings in windows: each original binding's window bindings. */
  windows?: [number, number[]][];
}

export const align4 = (n: number) => Math.ceil(n / 4) * 4;

const mib = (n: number) => (n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`);

/** The part of a pipeline key that names how its bindings were laid out. */
const layoutKey = (layouts: Map<number, StorageLayout>, f16Mode: F16Mode) =>
  [...layouts].map(([b, l]) => `${b}:${l.segments}x${l.segmentBytes}${l.f16 ? `:f16-${f16Mode}` : ""}`).join(",");

function readLimits(device: GPUDevice): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k in device.limits) {
    const v = (device.limits as unknown as Record<string, unknown>)[k];
    if (typeof v === "number") out[k] = v;
  }
  return out;
}
