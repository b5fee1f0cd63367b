/**
 * A Tensor is an f32 GPU buffer plus a shape, always contiguous (row-major). Views such as `reshape`
 * share the buffer through a reference-counted Storage, so each tensor can be disposed on its own.
 * `toArray()` is the only synchronisation point.
 */
import { backward as runBackward, type Node } from "./autograd.ts";
import { runtime } from "./runtime.ts";
import { track } from "./scope.ts";
import * as ew from "../ops/elementwise.ts";

export class Storage {
  refs = 1;
  constructor(readonly buffer: GPUBuffer, readonly bytes: number) {}
  retain() { this.refs++; return this; }
  release() {
    if (--this.refs === 0) runtime().pool.release(this.buffer);
  }
}

export const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export class Tensor {
  readonly isTensor = true;
  readonly size: number;
  requiresGrad = false;
  grad: Tensor | null = null;
  gradFn: Node | null = null;
  private _storage: Storage | null;

  constructor(storage: Storage, readonly shape: readonly number[]) {
    this.size = numel(shape);
    if (storage.bytes < this.size * 4) throw new Error(`Tensor: storage of ${storage.bytes} bytes is too small for shape [${shape}]`);
    this._storage = storage;
    track(this);
  }

  /** An uninitialised tensor (contents are whatever the pooled buffer held). */
  static empty(shape: readonly number[], forCpuWrite = false): Tensor {
    const bytes = Math.max(4, numel(shape) * 4);
    return new Tensor(new Storage(runtime().pool.acquire(bytes, forCpuWrite), bytes), [...shape]);
  }

  static from(data: ArrayLike<number>, shape: readonly number[] = [data.length]): Tensor {
    if (numel(shape) !== data.length) throw new Error(`Tensor.from: ${data.length} values do not fill shape [${shape}]`);
    const t = Tensor.empty(shape, true);
    const f32 = data instanceof Float32Array ? data : Float32Array.from(data);
    runtime().runner.device.queue.writeBuffer(t.buffer, 0, f32.buffer, f32.byteOffset, f32.byteLength);
    return t;
  }

  static zeros(shape: readonly number[]): Tensor {
    const t = Tensor.empty(shape);
    runtime().runner.commandEncoder().clearBuffer(t.buffer, 0, t.storage.bytes - (t.storage.bytes % 4));
    return t;
  }

  static full(shape: readonly number[], value: number): Tensor {
    return value === 0 ? Tensor.zeros(shape) : ew.fill(shape, value);
  }

  get storage(): Storage {
    if (!this._storage) throw new Error(`use of a disposed tensor of shape [${this.shape}] (it was freed by dispose() or at the end of its scope; keep() it to hold on to it)`);
    return this._storage;
  }
  get buffer(): GPUBuffer { return this.storage.buffer; }
  get disposed(): boolean { return this._storage === null; }
  get ndim(): number { return this.shape.length; }

  dispose(): void {
    if (!this._storage) return;
    this._storage.release();
    this._storage = null;
    this.gradFn = null;
  }

  /** Same data, new shape (one dimension may be -1). Shares storage; differentiable. */
  reshape(shape: readonly number[]): Tensor {
    const resolved = resolveShape(shape, this.size, this.shape);
    const out = new Tensor(this.storage.retain(), resolved);
    if (this.requiresGrad) ew.recordReshape(out, this);
    return out;
  }

  /** Same storage, cut from the graph. */
  detach(): Tensor { return new Tensor(this.storage.retain(), this.shape); }

  /** Marks a leaf as trainable; returns this. */
  requireGrad(flag = true): this { this.requiresGrad = flag; return this; }

  async toArray(): Promise<Float32Array> {
    return runtime().runner.readF32(this.buffer, this.size);
  }

  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item(): tensor has ${this.size} elements, not 1`);
    return (await this.toArray())[0]!;
  }

  backward(grad?: Tensor): void { runBackward(this, grad); }

  onesLike(): Tensor { return Tensor.full(this.shape, 1); }
  add(other: Tensor | number): Tensor { return ew.add(this, other); }
  sub(other: Tensor | number): Tensor { return ew.sub(this, other); }
  mul(other: Tensor | number): Tensor { return ew.mul(this, other); }
  div(other: Tensor | number): Tensor { return ew.div(this, other); }
  neg(): Tensor { return ew.neg(this); }

  toString(): string { return `Tensor[${this.shape.join("×")}]${this.requiresGrad ? " requiresGrad" : ""}`; }
}

function resolveShape(shape: readonly number[], size: number, from: readonly number[]): number[] {
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const out = shape.map((d) => (d === -1 ? size / known : d));
  if (shape.filter((d) => d === -1).length > 1 || numel(out) !== size || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`reshape: cannot view [${from}] (${size} elements) as [${shape}]`);
  }
  return out;
}
