/** Elementwise ops with broadcasting and their gradients. */
import * as K from "@textcraftor/webgpu-kernels";
import { record } from "../tensor/autograd.ts";
import { runtime } from "../tensor/runtime.ts";
import { Tensor } from "../tensor/tensor.ts";
import { sumToShape } from "./reduce.ts";

type Operand = Tensor | number;

const r = () => runtime().runner;

export function fill(shape: readonly number[], value: number): Tensor {
  const out = Tensor.empty(shape);
  K.fill(r(), out.buffer, out.size, value);
  return out;
}

/** out = scale·op(x) + shift, without autograd (building block for ops below). */
function mapRaw(x: Tensor, op: K.UnaryOp, scale = 1, shift = 0): Tensor {
  const out = Tensor.empty(x.shape);
  K.unary(r(), op, x.buffer, out.buffer, x.size, scale, shift);
  return out;
}

function binaryRaw(op: K.BinaryOp, a: Tensor, b: Tensor): Tensor {
  const out = Tensor.empty(K.broadcastShapes(a.shape, b.shape));
  K.binary(r(), op, a.buffer, a.shape, b.buffer, b.shape, out.buffer);
  return out;
}

/** x·scale + shift: the affine map every scalar operand reduces to. */
export function affine(x: Tensor, scale: number, shift = 0): Tensor {
  return record(mapRaw(x, "identity", scale, shift), "affine", [x], (g) => [scale === 1 ? g.reshape(g.shape) : mapRaw(g, "identity", scale)]);
}

export function add(a: Tensor, b: Operand): Tensor {
  if (typeof b === "number") return affine(a, 1, b);
  const out = binaryRaw("add", a, b);
  return record(out, "add", [a, b], (g) => [sumToShape(g, a.shape), sumToShape(g, b.shape)]);
}

export function sub(a: Tensor, b: Operand): Tensor {
  if (typeof b === "number") return affine(a, 1, -b);
  const out = binaryRaw("sub", a, b);
  return record(out, "sub", [a, b], (g) => [sumToShape(g, a.shape), b.requiresGrad ? sumToShapeScaled(g, b.shape, -1) : null]);
}

export function mul(a: Tensor, b: Operand): Tensor {
  if (typeof b === "number") return affine(a, b);
  const out = binaryRaw("mul", a, b);
  return record(out, "mul", [a, b], (g) => [
    a.requiresGrad ? reduceProduct(g, b, a.shape) : null,
    b.requiresGrad ? reduceProduct(g, a, b.shape) : null,
  ]);
}

export function div(a: Tensor, b: Operand): Tensor {
  if (typeof b === "number") return affine(a, 1 / b);
  const out = binaryRaw("div", a, b);
  return record(out, "div", [a, b], (g) => {
    const ga = a.requiresGrad ? sumToShape(binaryRaw("div", g, b), a.shape) : null;
    // d(a/b)/db = −a/b² = −out/b
    const gb = b.requiresGrad ? sumToShapeScaled(binaryRaw("mul", g, binaryRaw("div", out, b)), b.shape, -1) : null;
    return [ga, gb];
  });
}

export const neg = (x: Tensor) => affine(x, -1);

/** Activations whose derivative has a fused kernel taking (x, gradOut). */
const ACTIVATION_GRAD = { silu: "siluGrad", gelu: "geluGrad", quickGelu: "quickGeluGrad", sigmoid: "sigmoidGrad", relu: "reluGrad" } as const;

function activation(op: keyof typeof ACTIVATION_GRAD) {
  return (x: Tensor) => record(mapRaw(x, op), op, [x], (g) => [binaryRaw(ACTIVATION_GRAD[op], x, g)]);
}

export const silu = activation("silu");
export const gelu = activation("gelu");
export const quickGelu = activation("quickGelu");
export const sigmoid = activation("sigmoid");
export const relu = activation("relu");

export function exp(x: Tensor): Tensor {
  const out = mapRaw(x, "exp");
  return record(out, "exp", [x], (g) => [binaryRaw("mul", g, out)]);
}

export function log(x: Tensor): Tensor {
  return record(mapRaw(x, "log"), "log", [x], (g) => [binaryRaw("div", g, x)]);
}

export function sqrt(x: Tensor): Tensor {
  const out = mapRaw(x, "sqrt");
  return record(out, "sqrt", [x], (g) => [binaryRaw("div", g, mapRaw(out, "identity", 2))]);
}

export function square(x: Tensor): Tensor {
  return record(mapRaw(x, "square"), "square", [x], (g) => [binaryRaw("mul", g, mapRaw(x, "identity", 2))]);
}

export function tanh(x: Tensor): Tensor {
  const out = mapRaw(x, "tanh");
  // 1 − tanh²
  return record(out, "tanh", [x], (g) => [binaryRaw("mul", g, mapRaw(mapRaw(out, "square"), "identity", -1, 1))]);
}

/** Used by Tensor.reshape: the gradient of a view is the gradient reshaped back. */
export function recordReshape(out: Tensor, input: Tensor): void {
  record(out, "reshape", [input], (g) => [g.reshape(input.shape)]);
}

function reduceProduct(g: Tensor, other: Tensor, shape: readonly number[]): Tensor {
  return sumToShape(binaryRaw("mul", g, other), shape);
}

function sumToShapeScaled(g: Tensor, shape: readonly number[], scale: number): Tensor {
  return mapRaw(sumToShape(g, shape), "identity", scale);
}
