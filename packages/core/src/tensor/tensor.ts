/**
 * A Tensor is a GPU buffer plus a shape, always contiguous (row-major). Views such as `reshape`
 * share the buffer through a reference-counted Storage, so each tensor can be disposed on its own.
 * `toArray()` is the only synchronisation point.
 *
 * Storage is f32, or f16 for frozen weights (half the memory): kernels read f16 storage as f32 through the
 * runner's binding pass and always write f32, so every op takes either and returns f32.
 */
import * as K from "@textcraftor/webgpu-kernels";
import { deferDispose, recordReshape, releaseNode, backward as runBackward, type Node } from "./autograd.ts";
import { runtime } from "./runtime.ts";
import { track } from "./scope.ts";
import { toFloat32 } from "../io/dtypes.ts";

export type DType = "f32" | "f16";
export const dtypeBytes = (dtype: DType) => (dtype === "f16" ? 2 : 4);

export class Storage {
  refs = 1;
  constructor(
    readonly buffer: GPUBuffer,
    readonly bytes: number,
    readonly dtype: DType = "f32",
  ) {
    if (dtype === "f16") runtime().runner.markF16(buffer, true);
  }
  retain() {
    this.refs++;
    return this;
  }
  release() {
    if (--this.refs > 0) return;
    if (this.dtype === "f16") runtime().runner.markF16(this.buffer, false);
    runtime().pool.release(this.buffer);
  }
}

export const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The arithmetic methods (`x.add(y)` …) are the ops of ops/elementwise.ts, which attaches them. */
export interface Tensor {
  add(other: Tensor | number): Tensor;
  sub(other: Tensor | number): Tensor;
  mul(other: Tensor | number): Tensor;
  div(other: Tensor | number): Tensor;
  neg(): Tensor;
}

// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface above declares methods ops/ attaches
export class Tensor {
  readonly isTensor = true;
  readonly size: number;
  requiresGrad = false;
  grad: Tensor | null = null;
  gradFn: Node | null = null;
  private _storage: Storage | null;

  constructor(
    storage: Storage,
    readonly shape: readonly number[],
  ) {
    this.size = numel(shape);
    if (storage.bytes < this.size * dtypeBytes(storage.dtype))
      throw new Error(`Tensor: storage of ${storage.bytes} bytes is too small for shape [${shape}]`);
    this._storage = storage;
    track(this);
  }

  /** An uninitialised tensor (contents are whatever the pooled buffer held). */
  static empty(shape: readonly number[], forCpuWrite = false, dtype: DType = "f32"): Tensor {
    const bytes = Math.max(4, Math.ceil((numel(shape) * dtypeBytes(dtype)) / 4) * 4);
    return new Tensor(new Storage(runtime().pool.acquire(bytes, forCpuWrite), bytes, dtype), [...shape]);
  }

  static from(data: ArrayLike<number>, shape: readonly number[] = [data.length]): Tensor {
    if (numel(shape) !== data.length)
      throw new Error(`Tensor.from: ${data.length} values do not fill shape [${shape}]`);
    const t = Tensor.empty(shape, true);
    const f32 = data instanceof Float32Array ? data : Float32Array.from(data);
    runtime().runner.device.queue.writeBuffer(t.buffer, 0, f32.buffer, f32.byteOffset, f32.byteLength);
    return t;
  }

  static zeros(shape: readonly number[]): Tensor {
    const t = Tensor.empty(shape);
    runtime()
      .runner.commandEncoder()
      .clearBuffer(t.buffer, 0, t.storage.bytes - (t.storage.bytes % 4));
    return t;
  }

  static full(shape: readonly number[], value: number): Tensor {
    if (value === 0) return Tensor.zeros(shape);
    const t = Tensor.empty(shape);
    K.fill(runtime().runner, t.buffer, t.size, value);
    return t;
  }

  get storage(): Storage {
    if (!this._storage)
      throw new Error(
        `use of a disposed tensor of shape [${this.shape}] (it was freed by dispose() or at the end of its scope; keep() it to hold on to it)`,
      );
    return this._storage;
  }
  get buffer(): GPUBuffer {
    return this.storage.buffer;
  }
  get dtype(): DType {
    return this.storage.dtype;
  }
  get disposed(): boolean {
    return this._storage === null;
  }
  get ndim(): number {
    return this.shape.length;
  }

  /** Frees the storage now, or once the tape no longer reads it (see autograd.ts). */
  dispose(): void {
    if (!this._storage || deferDispose(this)) return;
    this._storage.release();
    this._storage = null;
    const node = this.gradFn;
    this.gradFn = null;
    if (node) releaseNode(node);
  }

  /** Same data, new shape (one dimension may be -1). Shares storage; differentiable. */
  reshape(shape: readonly number[]): Tensor {
    const resolved = resolveShape(shape, this.size, this.shape);
    const out = new Tensor(this.storage.retain(), resolved);
    if (this.requiresGrad) recordReshape(out, this);
    return out;
  }

  /** Holds `from`'s storage instead of its own (same shape): a parameter converted in place, as `module.half()` does. */
  adoptStorage(from: Tensor): void {
    if (from.size !== this.size) throw new Error(`adoptStorage: [${from.shape}] cannot replace [${this.shape}]`);
    const next = from.storage.retain();
    this.storage.release();
    this._storage = next;
  }

  /** Same storage, cut from the graph. */
  detach(): Tensor {
    return new Tensor(this.storage.retain(), this.shape);
  }

  /** Marks a leaf as trainable; returns this. */
  requireGrad(flag = true): this {
    this.requiresGrad = flag;
    return this;
  }

  async toArray(): Promise<Float32Array> {
    if (this.dtype === "f32") return runtime().runner.readF32(this.buffer, this.size);
    return toFloat32(new Uint8Array(await runtime().runner.read(this.buffer, this.size * 2)), "F16");
  }

  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item(): tensor has ${this.size} elements, not 1`);
    return (await this.toArray())[0]!;
  }

  backward(grad?: Tensor): void {
    runBackward(this, grad);
  }

  onesLike(): Tensor {
    return Tensor.full(this.shape, 1);
  }

  toString(): string {
    return `Tensor[${this.shape.join("×")}]${this.requiresGrad ? " requiresGrad" : ""}`;
  }
}

function resolveShape(shape: readonly number[], size: number, from: readonly number[]): number[] {
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const out = shape.map((d) => (d === -1 ? size / known : d));
  if (
    shape.filter((d) => d === -1).length > 1 ||
    numel(out) !== size ||
    out.some((d) => !Number.isInteger(d) || d < 0)
  ) {
    throw new Error(`reshape: cannot view [${from}] (${size} elements) as [${shape}]`);
  }
  return out;
}
