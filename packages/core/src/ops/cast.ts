/** Casts between storage dtypes. f16 tensors hold frozen weights, so the cast records no gradient. */
import * as K from "@textcraftor/webgpu-kernels";
import { runtime } from "../tensor/runtime.ts";
import { Tensor } from "../tensor/tensor.ts";

/** `x` rounded to f16 storage (half the memory); kernels read it back as f32. */
export function toF16(x: Tensor): Tensor {
  if (x.dtype === "f16") return x.detach();
  const out = Tensor.empty(x.shape, false, "f16");
  K.castToF16(runtime().runner, x.buffer, out.buffer, x.size);
  return out;
}
