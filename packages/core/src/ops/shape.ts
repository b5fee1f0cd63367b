/** Permute, slice, concat and chunk: strided copies into contiguous tensors, with their gradients. */
import * as K from "@textcraftor/webgpu-kernels";
import { record } from "../tensor/autograd.ts";
import { runtime } from "../tensor/runtime.ts";
import { Tensor } from "../tensor/tensor.ts";

const r = () => runtime().runner;

/** torch.permute, materialised contiguously. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.ndim || [...perm].sort().some((p, i) => p !== i))
    throw new Error(`permute: [${perm}] is not a permutation of ${x.ndim} dims`);
  const shape = perm.map((p) => x.shape[p]!);
  const out = Tensor.empty(shape);
  K.stridedCopy(r(), x.buffer, out.buffer, { shape, srcStrides: K.permuteStrides(x.shape, perm) });
  const inverse = perm.map((_, i) => perm.indexOf(i));
  return record(out, "permute", [x], (g) => [permute(g, inverse)]);
}

export const transpose = (x: Tensor, a: number, b: number) => {
  const perm = [...x.shape.keys()];
  const [i, j] = [a < 0 ? a + x.ndim : a, b < 0 ? b + x.ndim : b];
  [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  return permute(x, perm);
};

/** x[..., start:end, ...] along `axis`. */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const ax = axis < 0 ? axis + x.ndim : axis;
  if (start < 0 || end > x.shape[ax]! || start >= end)
    throw new Error(`slice: [${start}, ${end}) is outside dim ${ax} of [${x.shape}]`);
  const shape = x.shape.map((d, i) => (i === ax ? end - start : d));
  const strides = K.contiguousStrides(x.shape);
  const out = Tensor.empty(shape);
  K.stridedCopy(r(), x.buffer, out.buffer, { shape, srcStrides: strides, srcOffset: start * strides[ax]! });
  return record(out, "slice", [x], (g) => {
    const gx = Tensor.zeros(x.shape);
    K.stridedCopy(r(), g.buffer, gx.buffer, {
      shape,
      srcStrides: K.contiguousStrides(shape),
      dstStrides: strides,
      dstOffset: start * strides[ax]!,
      accumulate: true,
    });
    return [gx];
  });
}

/** torch.cat along `axis`. */
export function concat(xs: Tensor[], axis: number): Tensor {
  const ax = axis < 0 ? axis + xs[0]!.ndim : axis;
  const shape = [...xs[0]!.shape];
  shape[ax] = xs.reduce((s, t) => s + t.shape[ax]!, 0);
  for (const t of xs)
    if (t.ndim !== shape.length || t.shape.some((d, i) => i !== ax && d !== shape[i]))
      throw new Error(`concat: shapes ${xs.map((t) => `[${t.shape}]`).join(", ")} differ outside axis ${ax}`);
  const out = Tensor.empty(shape);
  const strides = K.contiguousStrides(shape);
  let offset = 0;
  const offsets = xs.map((t) => {
    K.stridedCopy(r(), t.buffer, out.buffer, {
      shape: t.shape,
      srcStrides: K.contiguousStrides(t.shape),
      dstStrides: strides,
      dstOffset: offset * strides[ax]!,
    });
    const o = offset;
    offset += t.shape[ax]!;
    return o;
  });
  return record(out, "concat", xs, (g) =>
    xs.map((t, i) => (t.requiresGrad ? slice(g, ax, offsets[i]!, offsets[i]! + t.shape[ax]!) : null)),
  );
}

/** torch.chunk into `n` equal parts along `axis`. */
export function chunk(x: Tensor, n: number, axis: number): Tensor[] {
  const ax = axis < 0 ? axis + x.ndim : axis;
  const size = x.shape[ax]! / n;
  if (!Number.isInteger(size)) throw new Error(`chunk: dim ${ax} of [${x.shape}] does not split into ${n} equal parts`);
  return Array.from({ length: n }, (_, i) => slice(x, ax, i * size, (i + 1) * size));
}
