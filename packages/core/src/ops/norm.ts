/** Group norm (optionally fused with SiLU), layer norm and softmax, with their gradients. */
import * as K from "@textcraftor/webgpu-kernels";
import { record } from "../tensor/autograd.ts";
import { runtime } from "../tensor/runtime.ts";
import { Tensor } from "../tensor/tensor.ts";

const r = () => runtime().runner;

function withStats(x: Tensor, rows: number, run: (out: Tensor, mean: Tensor, rstd: Tensor) => void) {
  const out = Tensor.empty(x.shape),
    mean = Tensor.empty([rows]),
    rstd = Tensor.empty([rows]);
  run(out, mean, rstd);
  return { out, mean, rstd };
}

/**
 * torch.nn.functional.group_norm over x [N, C, ...spatial] with per-channel affine; `silu: true` fuses the
 * SiLU that follows GroupNorm in every SD resnet block (the backward recomputes the pre-activation).
 */
export function groupNorm(
  x: Tensor,
  groups: number,
  weight: Tensor | null,
  bias: Tensor | null,
  eps = 1e-5,
  o: { silu?: boolean } = {},
): Tensor {
  const [batch, channels] = x.shape as [number, number];
  const shape: K.GroupNormShape = {
    batch,
    channels,
    spatial: x.size / (batch * channels),
    groups,
    silu: o.silu ?? false,
  };
  if (weight && weight.size !== channels)
    throw new Error(`groupNorm: weight has ${weight.size} elements for ${channels} channels`);
  const { out, mean, rstd } = withStats(x, batch * groups, (out, mean, rstd) =>
    K.groupNorm(r(), x.buffer, weight?.buffer ?? null, bias?.buffer ?? null, out.buffer, mean.buffer, rstd.buffer, {
      ...shape,
      eps,
    }),
  );
  return record(
    out,
    o.silu ? "groupNormSilu" : "groupNorm",
    [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])],
    (g) => {
      const gx = Tensor.empty(x.shape);
      const gw = weight?.requiresGrad ? Tensor.empty(weight.shape) : null;
      const gb = bias?.requiresGrad ? Tensor.empty(bias.shape) : null;
      K.groupNormBackward(
        r(),
        x.buffer,
        weight?.buffer ?? null,
        bias?.buffer ?? null,
        mean.buffer,
        rstd.buffer,
        g.buffer,
        gx.buffer,
        gw?.buffer ?? null,
        gb?.buffer ?? null,
        shape,
      );
      return [gx, ...(weight ? [gw] : []), ...(bias ? [gb] : [])];
    },
    [mean, rstd],
  );
}

/** torch.nn.functional.layer_norm over the last dimension. */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  const cols = x.shape[x.ndim - 1]!,
    rows = x.size / cols;
  const { out, mean, rstd } = withStats(x, rows, (out, mean, rstd) =>
    K.layerNorm(r(), x.buffer, weight?.buffer ?? null, bias?.buffer ?? null, out.buffer, mean.buffer, rstd.buffer, {
      rows,
      cols,
      eps,
    }),
  );
  return record(
    out,
    "layerNorm",
    [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])],
    (g) => {
      const gx = Tensor.empty(x.shape);
      const gw = weight?.requiresGrad ? Tensor.empty(weight.shape) : null;
      const gb = bias?.requiresGrad ? Tensor.empty(bias.shape) : null;
      K.layerNormBackward(
        r(),
        x.buffer,
        weight?.buffer ?? null,
        mean.buffer,
        rstd.buffer,
        g.buffer,
        gx.buffer,
        gw?.buffer ?? null,
        gb?.buffer ?? null,
        { rows, cols },
      );
      return [gx, ...(weight ? [gw] : []), ...(bias ? [gb] : [])];
    },
    [mean, rstd],
  );
}

/** Softmax over the last dimension. */
export function softmax(x: Tensor): Tensor {
  const cols = x.shape[x.ndim - 1]!,
    rows = x.size / cols;
  const out = Tensor.empty(x.shape);
  K.softmax(r(), x.buffer, out.buffer, { rows, cols });
  return record(out, "softmax", [x], (g) => {
    const gx = Tensor.empty(x.shape);
    K.softmaxBackward(r(), out.buffer, g.buffer, gx.buffer, { rows, cols });
    return [gx];
  });
}
