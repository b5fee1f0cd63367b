import { describe, expect, test } from "bun:test";
import { defineKernel, stableStringify } from "../src/kernel.ts";
import { FOLDED_INDEX } from "../src/runner.ts";
import { download, empty, getRunner, upload } from "./helpers.ts";

// y[i] = alpha·x[i] + offset (+ x[i] again when the spec asks for it): one f32 and one i32 uniform, a spec flag.
const axpy = defineKernel({
  name: "test-axpy",
  inputs: { x: "f32" },
  outputs: { y: "f32" },
  uniforms: { n: "u32", alpha: "f32", offset: "i32" },
  body: (s: { twice: boolean; wg: number }) => /* wgsl */ `
    ${FOLDED_INDEX}
    @compute @workgroup_size(${s.wg})
    fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
      let i = foldedIndex(wid, nwg) * ${s.wg}u + lid;
      if (i >= p.n) { return; }
      y[i] = p.alpha * x[i] + f32(p.offset)${s.twice ? " + x[i]" : ""};
    }`,
});

describe("declarative kernels", () => {
  test("bindings follow the uniform block: inputs, then outputs, each with its access and element type", () => {
    const code = axpy.wgsl({ twice: false, wg: 64 });
    expect(code).toContain("struct Params { n: u32, alpha: f32, offset: i32 }");
    expect(code).toContain("@group(0) @binding(0) var<uniform> p: Params;");
    expect(code).toContain("@group(0) @binding(1) var<storage, read> x: array<f32>;");
    expect(code).toContain("@group(0) @binding(2) var<storage, read_write> y: array<f32>;");
  });

  test("element types and enables may depend on the spec; no uniforms means no Params block", () => {
    const k = defineKernel({
      name: "test-vec",
      inputs: { a: (s: { vec: boolean }) => (s.vec ? "vec4<f32>" : "f32") },
      outputs: { b: "u32" },
      enables: (s) => (s.vec ? ["subgroups"] : []),
      body: () => "@compute @workgroup_size(1) fn main() {}",
    });
    const code = k.wgsl({ vec: true });
    expect(code.startsWith("enable subgroups;")).toBe(true);
    expect(code).toContain("@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;");
    expect(code).toContain("@group(0) @binding(1) var<storage, read_write> b: array<u32>;");
    expect(code).not.toContain("Params");
    expect(k.wgsl({ vec: false })).toContain("var<storage, read> a: array<f32>;");
  });

  test("the pipeline key is the name plus the spec, whatever the spec's key order", () => {
    expect(axpy.key({ twice: true, wg: 64 })).toBe(axpy.key({ wg: 64, twice: true }));
    expect(axpy.key({ twice: true, wg: 64 })).not.toBe(axpy.key({ twice: false, wg: 64 }));
    expect(stableStringify({ b: [1, { d: 2, c: "x" }], a: undefined, e: true })).toBe(
      '{"b":[1,{"c":"x","d":2}],"e":true}',
    );
  });

  test("runs with named buffers and uniforms; each spec compiles its own pipeline", async () => {
    const r = await getRunner();
    const n = 1000;
    const xs = Float32Array.from({ length: n }, (_, i) => i / 7 - 3);
    const x = upload(r, xs),
      y = empty(r, n);
    for (const twice of [false, true]) {
      axpy.run(
        r,
        { twice, wg: 64 },
        { buffers: { x, y }, uniforms: { n, alpha: 0.5, offset: -2 }, workgroups: n / 64 + 1 },
      );
      const out = await download(r, y, n);
      for (let i = 0; i < n; i++) expect(out[i]).toBeCloseTo(0.5 * xs[i]! - 2 + (twice ? xs[i]! : 0), 4);
    }
  });

  test("a binding the spec leaves out is neither declared nor bound, and the later ones close up", async () => {
    const k = defineKernel({
      name: "test-optional",
      inputs: { x: "f32", w: (s: { weighted: boolean }) => (s.weighted ? "f32" : null) },
      outputs: { y: "f32" },
      uniforms: { n: "u32" },
      body: (s) => /* wgsl */ `
        @compute @workgroup_size(64)
        fn main(@builtin(local_invocation_index) i: u32) {
          if (i < p.n) { y[i] = x[i]${s.weighted ? " * w[i]" : ""}; }
        }`,
    });
    expect(k.wgsl({ weighted: false })).not.toContain(" w:");
    expect(k.wgsl({ weighted: false })).toContain("@binding(2) var<storage, read_write> y");
    expect(k.wgsl({ weighted: true })).toContain("@binding(3) var<storage, read_write> y");
    const r = await getRunner();
    const x = upload(r, Float32Array.of(1, 2, 3)),
      w = upload(r, Float32Array.of(2, 3, 4)),
      y = empty(r, 3);
    k.run(r, { weighted: false }, { buffers: { x, w: null, y }, uniforms: { n: 3 }, workgroups: 1 });
    expect([...(await download(r, y, 3))]).toEqual([1, 2, 3]);
    k.run(r, { weighted: true }, { buffers: { x, w, y }, uniforms: { n: 3 }, workgroups: 1 });
    expect([...(await download(r, y, 3))]).toEqual([2, 6, 12]);
    expect(() => k.run(r, { weighted: false }, { buffers: { x, w, y }, uniforms: { n: 3 }, workgroups: 1 })).toThrow(
      'test-optional: "w" is given, but this specialization leaves it out',
    );
    expect(() =>
      k.run(r, { weighted: true }, { buffers: { x, w: null, y }, uniforms: { n: 3 }, workgroups: 1 }),
    ).toThrow('test-optional: no buffer given for "w"');
  });

  test("a missing or unknown buffer is refused by name", async () => {
    const r = await getRunner();
    const x = empty(r, 4);
    const uniforms = { n: 4, alpha: 1, offset: 0 };
    const spec = { twice: false, wg: 64 };
    expect(() => axpy.run(r, spec, { buffers: { x } as never, uniforms, workgroups: 1 })).toThrow(
      'test-axpy: no buffer given for "y"',
    );
    expect(() => axpy.run(r, spec, { buffers: { x, y: x, z: x } as never, uniforms, workgroups: 1 })).toThrow(
      'test-axpy: it has no buffer named "z"',
    );
  });
});

describe("runner scratch buffers", () => {
  test("one buffer per purpose, reused while it is large enough, replaced when outgrown", async () => {
    const r = await getRunner();
    const a = r.scratch("test", 100);
    expect(r.scratch("test", 64)).toBe(a);
    expect(r.scratch("other", 64)).not.toBe(a);
    const b = r.scratch("test", 4096);
    expect(b).not.toBe(a);
    expect(b.size).toBeGreaterThanOrEqual(4096);
    r.flush(); // the outgrown buffer is destroyed after the submit; the new one stays usable
    const x = upload(r, Float32Array.of(1, 2, 3, 4));
    axpy.run(
      r,
      { twice: false, wg: 64 },
      { buffers: { x, y: b }, uniforms: { n: 4, alpha: 2, offset: 1 }, workgroups: 1 },
    );
    expect([...(await download(r, r.scratch("test", 16), 4))]).toEqual([3, 5, 7, 9]);
  });
});
