/**
 * Declarative kernels: a kernel names its storage buffers, its uniforms and their types, and gives a body
 * built from a specialization (`spec`: everything baked into the WGSL). From that one definition come the
 * `@binding` lines, the `Params` struct, the pipeline cache key (the name plus a stable serialisation of the
 * spec, so two specs that generate different code can never share a pipeline) and a launcher that takes
 * buffers and uniforms by name. Binding 0 is the uniform block when there are uniforms; inputs follow in
 * declaration order, then outputs, numbered over those the spec declares.
 */
import type { KernelRunner, ParamValue } from "./runner.ts";

/** A uniform's WGSL type: every field is one 32-bit word. */
export type UniformType = "u32" | "i32" | "f32";

/** The element type of a storage array. */
export type ElementType = "f32" | "u32" | "i32" | "vec2<f32>" | "vec4<f32>" | "atomic<u32>";

/** A specialization: plain data (numbers, strings, booleans, nested objects and arrays). */
export type Spec = { readonly [key: string]: SpecValue };
type SpecValue = number | string | boolean | undefined | readonly SpecValue[] | { readonly [key: string]: SpecValue };

/**
 * A binding's element type, fixed or chosen by the spec (e.g. vec4 loads when a dimension allows them), or
 * null where the spec leaves the buffer out (an optional weight): "auto" layouts drop unused bindings, so an
 * absent buffer must not be declared at all.
 */
type Binding<S> = ElementType | ((spec: S) => ElementType | null);

export interface KernelDefinition<S extends Spec, In extends string, Out extends string, U extends string> {
  name: string;
  /** Read-only storage buffers, in binding order. */
  inputs: Record<In, Binding<S>>;
  /** Read-write storage buffers, after the inputs. */
  outputs: Record<Out, Binding<S>>;
  /** Uniforms, in `Params` field order; the body reads them as `p.name`. */
  uniforms?: Record<U, UniformType>;
  /** WGSL extensions the body needs for this spec (`subgroups`, `f16`), emitted as `enable` directives. */
  enables?: (spec: S) => string[];
  /** Everything after the declarations: helper functions, workgroup memory and `fn main`. */
  body: (spec: S) => string;
}

export type Launch<In extends string, Out extends string, U extends string> = {
  /** Every buffer the spec declares; null (or nothing) for those it leaves out. */
  buffers: Record<In | Out, GPUBuffer | null>;
  /** A total count (folded into 2-D past the per-dimension limit: read it with `foldedIndex`) or an explicit grid. */
  workgroups: number | [number, number, number];
} & ([U] extends [never] ? { uniforms?: undefined } : { uniforms: Record<U, number> });

export interface Kernel<S extends Spec, In extends string, Out extends string, U extends string> {
  readonly name: string;
  /** The pipeline cache key of `spec`. */
  key(spec: S): string;
  /** The complete WGSL for `spec`. */
  wgsl(spec: S): string;
  /** Records one dispatch of the kernel specialised by `spec`. */
  run(r: KernelRunner, spec: S, launch: Launch<In, Out, U>): void;
}

export function defineKernel<S extends Spec, In extends string, Out extends string, U extends string = never>(
  def: KernelDefinition<S, In, Out, U>,
): Kernel<S, In, Out, U> {
  const inputs = Object.keys(def.inputs) as In[];
  const outputs = Object.keys(def.outputs) as Out[];
  const uniforms = Object.entries(def.uniforms ?? {}) as [U, UniformType][];
  const names = [...inputs, ...outputs];
  const first = uniforms.length ? 1 : 0;
  const elementType = (b: Binding<S>, spec: S) => (typeof b === "function" ? b(spec) : b);
  const key = (spec: S) => `${def.name}:${stableStringify(spec)}`;

  const declared = (spec: S) => names.filter((n) => elementType(bindingOf(n), spec) !== null);
  const bindingOf = (n: In | Out) => (n in def.inputs ? def.inputs[n as In] : def.outputs[n as Out]);

  const wgsl = (spec: S) => {
    const present = declared(spec);
    const declare = (name: In | Out) =>
      `@group(0) @binding(${first + present.indexOf(name)}) var<storage, ${name in def.inputs ? "read" : "read_write"}> ` +
      `${name}: array<${elementType(bindingOf(name), spec)}>;`;
    return [
      ...(def.enables?.(spec) ?? []).map((e) => `enable ${e};`),
      ...(uniforms.length
        ? [
            `struct Params { ${uniforms.map(([n, t]) => `${n}: ${t}`).join(", ")} }`,
            "@group(0) @binding(0) var<uniform> p: Params;",
          ]
        : []),
      ...present.map(declare),
      def.body(spec),
    ].join("\n");
  };

  return {
    name: def.name,
    key,
    wgsl,
    run(r, spec, launch) {
      const present = declared(spec);
      const buffers = present.map((n) => {
        const b = launch.buffers[n];
        if (!b) throw new Error(`${def.name}: no buffer given for "${n}" (it binds ${present.join(", ")})`);
        return b;
      });
      for (const [n, b] of Object.entries(launch.buffers)) {
        if (!names.includes(n as In | Out)) throw new Error(`${def.name}: it has no buffer named "${n}"`);
        if (b && !present.includes(n as In | Out))
          throw new Error(
            `${def.name}: "${n}" is given, but this specialization leaves it out (${stableStringify(spec)})`,
          );
      }
      const params: ParamValue[] = uniforms.map(([n, type]) => {
        const v = (launch.uniforms as Record<U, number> | undefined)?.[n];
        if (typeof v !== "number" || Number.isNaN(v)) throw new Error(`${def.name}: uniform "${n}" is ${v}`);
        return type === "f32" ? { f32: v } : type === "i32" ? { i32: v } : v;
      });
      r.run({
        key: key(spec),
        wgsl: () => wgsl(spec),
        buffers,
        params: params.length ? params : undefined,
        workgroups: launch.workgroups,
      });
    },
  };
}

/** JSON with object keys sorted at every level, so equal specs give equal keys whatever their key order. */
export function stableStringify(value: SpecValue): string {
  if (value === undefined) return "null";
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v as SpecValue)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
