/**
 * torch.clamp with PyTorch's gradient: the incoming gradient passes where min ≤ x ≤ max (boundaries
 * included) and is zero outside. The reward gradient reaches the latents through the decoded image's
 * clamp to [0, 1], so saturated pixels must stop it exactly as they do in PyTorch.
 */
import * as K from "@textcraftor/webgpu-kernels";
import { record } from "../../tensor/autograd.ts";
import { runtime } from "../../tensor/runtime.ts";
import { Tensor } from "../../tensor/tensor.ts";

export function clamp(x: Tensor, min: number, max: number): Tensor {
  if (!(min <= max)) throw new Error(`clamp: min ${min} is greater than max ${max}`);
  const r = runtime().runner;
  const bounds = [Tensor.full([1], min), Tensor.full([1], max)] as const;
  const floored = Tensor.empty(x.shape), out = Tensor.empty(x.shape);
  K.binary(r, "maximum", x.buffer, x.shape, bounds[0].buffer, [1], floored.buffer);
  K.binary(r, "minimum", floored.buffer, x.shape, bounds[1].buffer, [1], out.buffer);
  // Kernels run in queue order, so these buffers may return to the pool before the batch is submitted.
  for (const t of [...bounds, floored]) t.dispose();
  return record(out, "clamp", [x], (g) => {
    // g·[min ≤ x ≤ max] = g − g·[x − max > 0] − g·[min − x > 0]; f32 subtraction keeps the sign exactly.
    const blocked = (scale: number, shift: number) => {
      const distance = Tensor.empty(x.shape), masked = Tensor.empty(x.shape);
      K.unary(r, "identity", x.buffer, distance.buffer, x.size, scale, shift);
      K.binary(r, "reluGrad", distance.buffer, x.shape, g.buffer, g.shape, masked.buffer);
      distance.dispose();
      return masked;
    };
    const above = blocked(1, -max), below = blocked(-1, min);
    const partial = Tensor.empty(x.shape), gx = Tensor.empty(x.shape);
    K.binary(r, "sub", g.buffer, g.shape, above.buffer, x.shape, partial.buffer);
    K.binary(r, "sub", partial.buffer, x.shape, below.buffer, x.shape, gx.buffer);
    for (const t of [above, below, partial]) t.dispose();
    return [gx];
  });
}
