/**
 * A WGSL pass that lets every kernel read and write buffers its adapter cannot bind whole, and read weights
 * stored as f16, without the kernel knowing.
 *
 * Segments: WebGPU binds at most `maxStorageBufferBindingSize` bytes of a buffer (128 MiB on lavapipe, in
 * browsers and on many integrated GPUs), while a buffer may hold up to `maxBufferSize` (4 GiB there). A
 * buffer past the limit is bound as several consecutive windows, each its own binding, and every `name[i]`
 * in the kernel becomes `name_load(i)` / `name_store(i, v)`, which pick the window by index. One pass over
 * the finished WGSL serves every kernel family, so no op has a large-tensor special case, and a kernel that
 * fits its bindings compiles exactly as written.
 *
 * f16 storage: a frozen weight kept as f16 halves its memory. Its `array<f32>` declaration becomes
 * `array<f16>` read through `f32(...)` where the device has `shader-f16`, or `array<u32>` of packed pairs read
 * through `unpack2x16float` where it does not; the math stays f32 either way.
 *
 * The pass reads declarations of the form `@group(0) @binding(N) var<storage, ACCESS> name: array<T>;`, as
 * all our kernels write them, and rewrites each indexed use of `name`; an indexed use it cannot express as a
 * load or a store (a pointer, an atomic, a component write) is refused with the kernel's key.
 */

/** How one storage binding is laid out: windows of `segmentBytes` (1 = bound whole) and the stored element type. */
export interface StorageLayout {
  segments: number;
  segmentBytes: number;
  f16: boolean;
}

/** f16 reads: "native" declares `array<f16>` (needs `enable f16;` and the `shader-f16` feature); "packed" unpacks u32 pairs. */
export type F16Mode = "native" | "packed";

const DECLARATION =
  /@group\(0\)\s*@binding\((\d+)\)\s*var<storage,\s*(read|read_write)>\s*(\w+)\s*:\s*array<(.+?)>\s*;/g;

/** Bytes and components of the element types our kernels declare. */
const ELEMENT: Record<string, { bytes: number; components: number }> = {
  f32: { bytes: 4, components: 1 },
  u32: { bytes: 4, components: 1 },
  i32: { bytes: 4, components: 1 },
  "vec2<f32>": { bytes: 8, components: 2 },
  "vec4<f32>": { bytes: 16, components: 4 },
  "vec2<u32>": { bytes: 8, components: 2 },
  "vec4<u32>": { bytes: 16, components: 4 },
};

export interface RewrittenKernel {
  code: string;
  /** For each rewritten original binding number, the binding numbers of its windows, in order. */
  windows: Map<number, number[]>;
}

/**
 * Rewrites `code` so that binding `b` of `layouts` is read in `segments` windows and/or from f16 storage.
 * New bindings are numbered after the highest one in the kernel.
 */
export function rewriteStorageBindings(
  code: string,
  layouts: Map<number, StorageLayout>,
  f16Mode: F16Mode,
  key: string,
): RewrittenKernel {
  const declarations = [...code.matchAll(DECLARATION)];
  let next = Math.max(...[...code.matchAll(/@binding\((\d+)\)/g)].map((m) => Number(m[1]))) + 1;
  const windows = new Map<number, number[]>();
  const accessors: string[] = [];
  let out = code,
    usesF16 = false;
  for (const [binding, requested] of layouts) {
    const decl = declarations.find((m) => Number(m[1]) === binding);
    if (!decl)
      throw new Error(
        `${key}: binding ${binding} is not declared as \`var<storage, …> name: array<T>;\`, so it cannot be split or stored as f16`,
      );
    const [text, , access, name, type] = decl as unknown as [string, string, "read" | "read_write", string, string];
    // A binding declared with integer elements sees an f16 buffer's raw words (the cast kernel writes them).
    const layout = { ...requested, f16: requested.f16 && type.includes("f32") };
    if (!layout.f16 && layout.segments === 1) continue;
    const element = ELEMENT[type];
    if (!element)
      throw new Error(`${key}: binding "${name}" holds array<${type}>, which cannot be split or stored as f16`);
    if (layout.f16 && access !== "read") {
      throw new Error(
        `${key}: "${name}" is written, but its buffer holds f16 values: f16 tensors are read-only (frozen weights)`,
      );
    }
    const storedBytes = layout.f16 ? element.components * 2 : element.bytes;
    const perWindow = layout.segmentBytes / storedBytes;
    if (!Number.isInteger(perWindow))
      throw new Error(`${key}: window of ${layout.segmentBytes} bytes is not a whole number of ${type} elements`);
    const numbers = [binding, ...Array.from({ length: layout.segments - 1 }, () => next++)];
    windows.set(binding, numbers);
    const storedDecl = layout.f16 ? storedF16Type(element.components, f16Mode) : type;
    usesF16 ||= layout.f16;
    out = out.replace(
      text,
      numbers
        .map((b, s) => `@group(0) @binding(${b}) var<storage, ${access}> ${name}_${s}: array<${storedDecl}>;`)
        .join("\n"),
    );
    out = rewriteUses(out, name, key);
    accessors.push(
      accessorsWgsl(name, type, access, numbers.length, perWindow, layout.f16 ? f16Mode : null, element.components),
    );
  }
  const enable = usesF16 && f16Mode === "native" ? "enable f16;\n" : "";
  return { code: enable + out + "\n" + accessors.join("\n"), windows };
}

const storedF16Type = (components: number, mode: F16Mode) =>
  mode === "native" ? (components === 1 ? "f16" : `vec${components}<f16>`) : components === 4 ? "vec2<u32>" : "u32";

/** `name_load(i)` (and `name_store(i, v)` for writable bindings) over `count` windows of `per` elements. */
function accessorsWgsl(
  name: string,
  type: string,
  access: string,
  count: number,
  per: number,
  f16: F16Mode | null,
  components: number,
): string {
  const read = (s: number, j: string) => {
    const buf = `${name}_${s}`;
    if (!f16) return `${buf}[${j}]`;
    if (f16 === "native") return `${type}(${buf}[${j}])`;
    if (components === 1) return `unpack2x16float(${buf}[(${j}) >> 1u])[(${j}) & 1u]`;
    if (components === 2) return `unpack2x16float(${buf}[${j}])`;
    return `vec4<f32>(unpack2x16float(${buf}[${j}].x), unpack2x16float(${buf}[${j}].y))`;
  };
  const pick = (body: (s: number, j: string) => string) =>
    Array.from({ length: count }, (_, s) => {
      const j = s === 0 ? "i" : `i - ${s * per}u`;
      return s === count - 1 ? `  ${body(s, j)}` : `  if (i < ${(s + 1) * per}u) { ${body(s, j)} }`;
    }).join("\n");
  let wgsl = `fn ${name}_load(i: u32) -> ${type} {\n${pick((s, j) => `return ${read(s, j)};`)}\n}`;
  if (access === "read_write")
    wgsl += `\nfn ${name}_store(i: u32, v: ${type}) {\n${pick((s, j) => `${name}_${s}[${j}] = v; return;`)}\n}`;
  return wgsl;
}

/** Replaces every `name[e]` by a load, `name[e] = v;` by a store and `name[e] op= v;` by a load and a store. */
function rewriteUses(code: string, name: string, key: string): string {
  const use = new RegExp(`(?<![\\w.])${name}\\s*\\[`, "g");
  let out = "",
    from = 0;
  for (let m = use.exec(code); m; m = use.exec(code)) {
    if (m.index < from) continue;
    if (/&\s*$/.test(code.slice(Math.max(0, m.index - 4), m.index)))
      throw new Error(`${key}: "${name}" is used through a pointer, which a split or f16 binding cannot serve`);
    const open = m.index + m[0].length - 1,
      close = matching(code, open, key);
    const index = rewriteUses(code.slice(open + 1, close), name, key);
    const after = code.slice(close + 1);
    const assign = /^\s*([+\-*/]?)=(?!=)/.exec(after);
    out += code.slice(from, m.index);
    if (assign) {
      const rhsStart = close + 1 + assign[0].length,
        end = statementEnd(code, rhsStart, key);
      const rhs = rewriteUses(code.slice(rhsStart, end), name, key).trim();
      const value = assign[1] ? `${name}_load(u32(${index})) ${assign[1]} (${rhs})` : rhs;
      out += `${name}_store(u32(${index}), ${value})`;
      from = end;
    } else {
      out += `${name}_load(u32(${index}))`;
      from = close + 1;
    }
    use.lastIndex = from;
  }
  return out + code.slice(from);
}

function matching(code: string, open: number, key: string): number {
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    if (code[i] === "[") depth++;
    else if (code[i] === "]" && --depth === 0) return i;
  }
  throw new Error(`${key}: unbalanced [ at ${open}`);
}

/** Index of the `;` ending the statement that starts at `from` (outside brackets and parentheses). */
function statementEnd(code: string, from: number, key: string): number {
  let depth = 0;
  for (let i = from; i < code.length; i++) {
    const c = code[i];
    if (c === "(" || c === "[") depth++;
    else if (c === ")" || c === "]") depth--;
    else if (c === ";" && depth === 0) return i;
  }
  throw new Error(`${key}: assignment without ; at ${from}`);
}
