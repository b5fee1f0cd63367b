import { beforeAll, describe, expect, test } from "bun:test";
import * as T from "../src/index.ts";
import { Attention } from "../src/models/common/attention.ts";
import { ResnetBlock2D } from "../src/models/common/resnet.ts";

beforeAll(async () => {
  await T.initRuntime();
});

const names = (m: T.Module) => [...m.namedParameters()].map(([n]) => n);

describe("the blocks the UNet and the VAE share", () => {
  test("ResnetBlock2D: time_emb_proj exactly when a time embedding width is given, and a clear error otherwise", () => {
    const rng = new T.Rng(1);
    const unetStyle = new ResnetBlock2D(4, 8, { groups: 2, eps: 1e-5, tembChannels: 6, rng });
    const vaeStyle = new ResnetBlock2D(4, 4, { groups: 2, eps: 1e-6, rng });
    expect(names(unetStyle)).toContain("time_emb_proj.weight");
    expect(names(unetStyle)).toContain("conv_shortcut.weight");
    expect(names(vaeStyle).some((n) => n.startsWith("time_emb_proj") || n.startsWith("conv_shortcut"))).toBe(false);
    T.scope(() => {
      const x = T.Tensor.zeros([1, 4, 2, 2]),
        temb = T.Tensor.zeros([1, 6]);
      expect(unetStyle.forward(x, temb).shape).toEqual([1, 8, 2, 2]);
      expect(() => unetStyle.forward(x)).toThrow(/needs a time embedding/);
      expect(() => vaeStyle.forward(x, temb)).toThrow(/no time_emb_proj/);
    });
    unetStyle.dispose();
    vaeStyle.dispose();
  });

  test("Attention: the UNet's (heads, cross, no bias) and the VAE's (group_norm, bias, residual) parameter names", () => {
    const rng = new T.Rng(2);
    const cross = new Attention(8, { heads: 2, contextDim: 6, rng });
    const pixels = new Attention(8, {
      heads: 1,
      bias: true,
      norm: { groups: 2, eps: 1e-6 },
      residualConnection: true,
      rng,
    });
    expect(names(cross)).toEqual(["to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight", "to_out.0.bias"]);
    expect(names(pixels)).toEqual([
      "group_norm.weight",
      "group_norm.bias",
      "to_q.weight",
      "to_q.bias",
      "to_k.weight",
      "to_k.bias",
      "to_v.weight",
      "to_v.bias",
      "to_out.0.weight",
      "to_out.0.bias",
    ]);
    T.scope(() => {
      expect(cross.forward(T.Tensor.zeros([1, 3, 8]), T.Tensor.zeros([1, 5, 6])).shape).toEqual([1, 3, 8]);
      expect(pixels.forward(T.Tensor.zeros([1, 8, 2, 3])).shape).toEqual([1, 8, 2, 3]);
    });
    cross.dispose();
    pixels.dispose();
  });
});
