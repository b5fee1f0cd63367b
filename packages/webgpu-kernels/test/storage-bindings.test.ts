/**
 * The binding pass: kernels read and write buffers past the binding limit through windows, and read f16
 * storage as f32, without knowing it. Checked on a runner with a 4 KiB binding limit against CPU results.
 */
import { describe, expect, test } from "bun:test";
import { castToF16, roundToF16Cpu } from "../src/cast.ts";
import { KernelRunner } from "../src/runner.ts";
import { rewriteStorageBindings } from "../src/storage-bindings.ts";
import { download, empty, expectClose, getRunner, random, upload } from "./helpers.ts";

const WINDOW = 4096;
const small = async (f16Mode?: "native" | "packed") => {
  const base = await getRunner();
  return new KernelRunner(
    base.device,
    { ...base.limits, maxStorageBufferBindingSize: WINDOW, minStorageBufferOffsetAlignment: 256 },
    base.features,
    { f16Mode },
  );
};

/** y = 2·x + b; out += y (a compound store) over `n` elements, read as scalars or vec4s. */
const kernel = (vec: boolean) => () => {
  const t = vec ? "vec4<f32>" : "f32";
  return `struct Params { n: u32 }
  @group(0) @binding(0) var<uniform> p: Params;
  @group(0) @binding(1) var<storage, read> x: array<${t}>;
  @group(0) @binding(2) var<storage, read> b: array<${t}>;
  @group(0) @binding(3) var<storage, read_write> out: array<${t}>;
  @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    let i = g.x;
    if (i >= p.n) { return; }
    let y = 2.0 * x[i] + b[ i ];
    out[i] += y;
  }`;
};

describe("windows past the binding limit", () => {
  for (const [n, vec] of [
    [1, false],
    [1500, false],
    [3 * 1024 - 5, false],
    [4 * 600, true],
  ] as const) {
    test(`${n} elements${vec ? " as vec4" : ""} over ${Math.ceil((n * 4) / WINDOW)} windows`, async () => {
      const r = await small();
      const x = random(n, 1),
        b = random(n, 2),
        o = random(n, 3);
      const [gx, gb, go] = [upload(r, x), upload(r, b), upload(r, o)];
      const count = vec ? n / 4 : n;
      r.run({
        key: `test:axpy:${vec}`,
        wgsl: kernel(vec),
        buffers: [gx, gb, go],
        params: [count],
        workgroups: Math.ceil(count / 64),
      });
      expect(r.rewrittenDispatches).toBe(n * 4 > WINDOW ? 1 : 0);
      expectClose(
        await download(r, go, n),
        Float64Array.from(o, (v, i) => v + 2 * x[i]! + b[i]!),
        1e-6,
      );
    });
  }
});

describe("f16 storage read as f32", () => {
  for (const mode of ["native", "packed"] as const) {
    for (const n of [1, 3, 77, 2001]) {
      test(`${mode}: ${n} values, cast on the GPU, then read by an f32 kernel`, async () => {
        const r = await small(mode);
        if (mode === "native" && !r.features.has("shader-f16")) return expect(r.f16Mode).toBe("packed");
        // Awkward values: subnormal halves, ties, the largest half, a value that overflows it.
        const x = random(n, 4, 8);
        if (n > 3) {
          x[0] = 1e-6;
          x[1] = 65504;
          x[2] = 1 + 2 ** -11;
          x[3] = -3.3e-7;
        }
        const gx = upload(r, x),
          half = empty(r, Math.ceil(n / 2)),
          zero = upload(r, new Float32Array(n)),
          out = upload(r, new Float32Array(n));
        castToF16(r, gx, half, n);
        r.markF16(half, true);
        r.run({
          key: "test:axpy:false",
          wgsl: kernel(false),
          buffers: [half, zero, out],
          params: [n],
          workgroups: Math.ceil(n / 64),
        });
        const expected = Float64Array.from(roundToF16Cpu(x), (v) => 2 * v);
        expect(Array.from(await download(r, out, n))).toEqual(Array.from(expected));
      });
    }
  }

  test("an f16 buffer bound for writing is refused", async () => {
    const r = await small("packed");
    const half = empty(r, 8),
      x = upload(r, new Float32Array(16));
    r.markF16(half, true);
    expect(() =>
      r.run({ key: "test:axpy:false", wgsl: kernel(false), buffers: [x, x, half], params: [16], workgroups: 1 }),
    ).toThrow(
      'test:axpy:false: "out" is written, but its buffer holds f16 values: f16 tensors are read-only (frozen weights)',
    );
  });
});

describe("the rewrite", () => {
  test("loads, stores and compound stores become accessor calls; untouched bindings keep their code", () => {
    const code = `@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
fn f(i: u32) { out[i] = a[a_index(i)] + out[i + 1u]; out[2u * i] *= a[i]; }`;
    const { code: wgsl, windows } = rewriteStorageBindings(
      code,
      new Map([[1, { segments: 3, segmentBytes: 256, f16: false }]]),
      "packed",
      "k",
    );
    expect(windows.get(1)).toEqual([1, 2, 3]);
    expect(wgsl).toContain("out_store(u32(i), a[a_index(i)] + out_load(u32(i + 1u)));");
    expect(wgsl).toContain("out_store(u32(2u * i), out_load(u32(2u * i)) * (a[i]));");
    expect(wgsl).toContain("@group(0) @binding(3) var<storage, read_write> out_2: array<f32>;");
    expect(wgsl).toContain("if (i < 128u) { out_1[i - 64u] = v; return; }");
  });

  test("a pointer to a split binding is refused with the kernel's key", () => {
    const code = `@group(0) @binding(0) var<storage, read_write> flag: array<u32>;
fn f() { atomicOr(&flag[0], 1u); }`;
    expect(() =>
      rewriteStorageBindings(code, new Map([[0, { segments: 2, segmentBytes: 256, f16: false }]]), "packed", "adamw"),
    ).toThrow('adamw: "flag" is used through a pointer');
  });
});
