/** Sums and means over axes, and `sumToShape`, which undoes broadcasting in gradients. */
import * as K from "@textcraftor/webgpu-kernels";
import { record } from "../tensor/autograd.ts";
import { runtime } from "../tensor/runtime.ts";
import { Tensor } from "../tensor/tensor.ts";

const normAxes = (axes: number | number[] | undefined, ndim: number) =>
  (axes === undefined ? [...Array(ndim).keys()] : [axes].flat())
    .map((a) => (a < 0 ? a + ndim : a))
    .sort((a, b) => a - b);

function sumRaw(x: Tensor, axes: number[]): Tensor {
  const outShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = Tensor.empty(outShape);
  K.sumAxes(runtime().runner, x.buffer, out.buffer, x.shape, axes);
  return out;
}

/** Sum over `axes` (all when omitted); `keepdim` as in torch.sum. */
export function sum(x: Tensor, axes?: number | number[], keepdim = false): Tensor {
  const ax = normAxes(axes, x.ndim);
  for (const a of ax) if (a < 0 || a >= x.ndim) throw new Error(`sum: axis ${a} out of range for shape [${x.shape}]`);
  const kept = sumRaw(x, ax);
  const shape = keepdim ? kept.shape : x.shape.filter((_, i) => !ax.includes(i));
  const out = keepdim ? kept : kept.reshape(shape);
  return record(out, "sum", [x], (g) => [expandTo(g.reshape(kept.shape), x.shape)]);
}

export function mean(x: Tensor, axes?: number | number[], keepdim = false): Tensor {
  const ax = normAxes(axes, x.ndim);
  const n = ax.reduce((p, a) => p * x.shape[a]!, 1);
  return sum(x, ax, keepdim).mul(1 / n);
}

/** Reduces a broadcast gradient back to `shape` (sums the broadcast dimensions). */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g.reshape(shape);
  const lead = g.ndim - shape.length;
  const axes = g.shape.map((_, i) => i).filter((i) => i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1));
  return sumRaw(g, axes).reshape(shape);
}

/** Broadcasts `x` to `shape` by materialising it (used by the gradient of sum). */
export function expandTo(x: Tensor, shape: readonly number[]): Tensor {
  const out = Tensor.empty(shape);
  K.stridedCopy(runtime().runner, x.buffer, out.buffer, { shape, srcStrides: K.broadcastStrides(x.shape, shape) });
  return out;
}
