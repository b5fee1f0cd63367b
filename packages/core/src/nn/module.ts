/**
 * Module: a tree of named parameters whose dotted names are the PyTorch state_dict keys
 * (`down_blocks.0.resnets.1.conv1.weight`), so checkpoints load by name without translation tables.
 */
import { runtime } from "../tensor/runtime.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { fromFloat32 } from "../io/dtypes.ts";
import { toF16 } from "../ops/cast.ts";
import { paramDtype } from "./init.ts";

export interface TensorData {
  data: Float32Array;
  shape: readonly number[];
}

export class Module {
  private readonly ownParams = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  /** Registers a parameter (a leaf that requires grad, or a frozen f16 one under `withParamDtype("f16")`) under `name`. */
  protected param(name: string, t: Tensor): Tensor {
    if (name.includes(".")) throw new Error(`parameter name "${name}" must not contain dots`);
    if (paramDtype() === "f16") storeAsF16(t);
    else t.requireGrad();
    this.ownParams.set(name, t);
    return t;
  }

  /**
   * Stores every parameter as f16, in place (PyTorch's `module.half()`, for frozen weights): half the memory,
   * read by the kernels as f32. The parameters stop requiring grad: f16 weights are never updated.
   */
  half(): this {
    for (const t of this.parameters()) storeAsF16(t);
    return this;
  }

  /** Registers a submodule under `name` (public so that adapters such as LoRA can be attached later). */
  child<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  removeChild(name: string): void {
    this.children.delete(name);
  }

  *namedParameters(prefix = ""): Generator<[string, Tensor]> {
    for (const [n, t] of this.ownParams) yield [prefix + n, t];
    for (const [n, c] of this.children) yield* c.namedParameters(`${prefix}${n}.`);
  }

  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, t]) => t);
  }

  /** This module and every descendant with its dotted path ("" for this one). */
  *namedModules(prefix = ""): Generator<[string, Module]> {
    yield [prefix.replace(/\.$/, ""), this];
    for (const [n, c] of this.children) yield* c.namedModules(`${prefix}${n}.`);
  }

  parameterCount(): number {
    return this.parameters().reduce((s, t) => s + t.size, 0);
  }

  /** Sets requiresGrad on every parameter (freeze with false). */
  requiresGrad(flag: boolean): this {
    for (const t of this.parameters()) t.requiresGrad = flag;
    return this;
  }

  /**
   * Copies tensors into the parameters by name. Strict by default: a missing or unexpected key, or a shape
   * mismatch, fails with the tensor's name and both shapes.
   */
  loadStateDict(dict: Map<string, TensorData>, { strict = true } = {}): void {
    const params = new Map(this.namedParameters());
    const problems: string[] = [];
    // writeBuffer overtakes encoded-but-unsubmitted kernels that may still read the old values.
    runtime().runner.flush();
    for (const [name, t] of params) {
      const src = dict.get(name);
      if (!src) {
        if (strict) problems.push(`missing tensor "${name}" (expected shape [${t.shape}])`);
        continue;
      }
      if (src.shape.length !== t.shape.length || src.shape.some((d, i) => d !== t.shape[i])) {
        problems.push(`tensor "${name}": expected shape [${t.shape}], found [${src.shape}]`);
        continue;
      }
      const bytes = t.dtype === "f16" ? padTo4(fromFloat32(src.data, "F16")) : src.data;
      runtime().runner.device.queue.writeBuffer(t.buffer, 0, bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    if (strict) for (const name of dict.keys()) if (!params.has(name)) problems.push(`unexpected tensor "${name}"`);
    if (problems.length) {
      const shown = problems.slice(0, 20).join("\n  ");
      throw new Error(
        `${this.constructor.name}.loadStateDict: ${problems.length} problem(s):\n  ${shown}${problems.length > 20 ? "\n  ..." : ""}`,
      );
    }
  }

  /** Reads every parameter back (for saving). */
  async stateDict(): Promise<Map<string, TensorData>> {
    const out = new Map<string, TensorData>();
    for (const [n, t] of this.namedParameters()) out.set(n, { data: await t.toArray(), shape: t.shape });
    return out;
  }

  dispose(): void {
    for (const t of this.parameters()) {
      t.grad?.dispose();
      t.grad = null;
      t.dispose();
    }
  }
}

function storeAsF16(t: Tensor): void {
  t.requiresGrad = false;
  if (t.dtype === "f16") return;
  const half = toF16(t);
  t.adoptStorage(half);
  half.dispose();
}

/** writeBuffer takes whole 4-byte words: an odd count of f16 values gets a zero half at the end. */
function padTo4(b: Uint8Array): Uint8Array {
  if (b.byteLength % 4 === 0) return b;
  const out = new Uint8Array(b.byteLength + 2);
  out.set(b);
  return out;
}

/** A numbered list of modules (`blocks.0`, `blocks.1`, ...). */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items.map((m, i) => this.child(String(i), m));
  }
  get length() {
    return this.items.length;
  }
  at(i: number): M {
    return this.items[i]!;
  }
  [Symbol.iterator]() {
    return this.items[Symbol.iterator]();
  }
}
