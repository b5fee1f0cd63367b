/** Our ops against PyTorch's outputs and gradients (fixtures from scripts/fixtures/ops_golden.py). */
import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import * as T from "../src/index.ts";
import { relError } from "./gradcheck.ts";

type Fixture = Record<string, { shape: number[]; data: number[] }>;
const load = async (name: string): Promise<Fixture> =>
  Bun.file(join(import.meta.dir, "fixtures/ops", `${name}.json`)).json();
const tensor = (f: Fixture, key: string, grad = true) => T.Tensor.from(f[key]!.data, f[key]!.shape).requireGrad(grad);

beforeAll(async () => {
  await T.initRuntime();
});

/** Runs `forward` on leaves made from `inputs`, backpropagates fixture.grad_out, compares out and each grad. */
async function check(
  f: Fixture,
  inputs: string[],
  forward: (xs: T.Tensor[]) => T.Tensor,
  gradKeys: string[],
  tol = 1e-4,
) {
  await T.scopeAsync(async () => {
    const xs = inputs.map((k) => tensor(f, k));
    const out = forward(xs);
    expect(relError(await out.toArray(), f.out!.data)).toBeLessThan(tol);
    out.backward(T.Tensor.from(f.grad_out!.data, out.shape));
    for (const [i, key] of gradKeys.entries()) {
      const err = relError(await xs[i]!.grad!.toArray(), f[key]!.data);
      expect(err, key).toBeLessThan(tol);
      xs[i]!.grad!.dispose();
    }
  });
}

describe("ops match PyTorch (forward and gradients)", () => {
  test("conv2d, stride 2, padding 1, bias", async () => {
    const f = await load("conv2d");
    await check(f, ["x", "w", "b"], ([x, w, b]) => T.conv2d(x!, w!, b!, { stride: 2, padding: 1 }), [
      "grad_x",
      "grad_w",
      "grad_b",
    ]);
  });

  test("group norm", async () => {
    const f = await load("group_norm");
    await check(f, ["x", "w", "b"], ([x, w, b]) => T.groupNorm(x!, 4, w!, b!, 1e-5), ["grad_x", "grad_w", "grad_b"]);
  });

  test("cross attention and causal self-attention", async () => {
    for (const [name, causal] of [
      ["attention", false],
      ["attention_causal", true],
    ] as const) {
      const f = await load(name);
      await check(f, ["q", "k", "v"], ([q, k, v]) => T.scaledDotProductAttention(q!, k!, v!, { causal }), [
        "grad_q",
        "grad_k",
        "grad_v",
      ]);
    }
  });

  test("a resnet + self-attention block, including parameter gradients", async () => {
    const f = await load("block");
    const names = Object.keys(f)
      .filter((k) => k.startsWith("param."))
      .map((k) => k.slice(6));
    await T.scopeAsync(async () => {
      const P = Object.fromEntries(names.map((n) => [n, tensor(f, `param.${n}`)]));
      const x = tensor(f, "x"),
        temb = tensor(f, "temb");
      const [B, C, H, W] = x.shape as number[];
      let h = T.conv2d(
        T.groupNorm(x, 4, P["gn1.weight"]!, P["gn1.bias"]!, 1e-5, { silu: true }),
        P["conv1.weight"]!,
        P["conv1.bias"]!,
        { padding: 1 },
      );
      h = h.add(T.linear(T.silu(temb), P["time_proj.weight"]!, P["time_proj.bias"]!).reshape([B!, C!, 1, 1]));
      h = T.conv2d(
        T.groupNorm(h, 4, P["gn2.weight"]!, P["gn2.bias"]!, 1e-5, { silu: true }),
        P["conv2.weight"]!,
        P["conv2.bias"]!,
        { padding: 1 },
      ).add(x);
      const t = T.transpose(T.groupNorm(h, 4, P["gn3.weight"]!, P["gn3.bias"]!, 1e-6).reshape([B!, C!, H! * W!]), 1, 2);
      const a = T.scaledDotProductAttention(
        T.linear(t, P["to_q.weight"]!),
        T.linear(t, P["to_k.weight"]!),
        T.linear(t, P["to_v.weight"]!),
      );
      const out = h.add(T.transpose(T.linear(a, P["proj.weight"]!, P["proj.bias"]!), 1, 2).reshape(h.shape));
      expect(relError(await out.toArray(), f.out!.data)).toBeLessThan(1e-4);
      out.backward(T.Tensor.from(f.grad_out!.data, out.shape));
      expect(relError(await x.grad!.toArray(), f.grad_x!.data)).toBeLessThan(1e-4);
      expect(relError(await temb.grad!.toArray(), f.grad_temb!.data)).toBeLessThan(1e-4);
      for (const n of names) expect(relError(await P[n]!.grad!.toArray(), f[`grad.${n}`]!.data), n).toBeLessThan(1e-4);
      for (const t of [x, temb, ...Object.values(P)]) t.grad?.dispose();
    });
  });
});
