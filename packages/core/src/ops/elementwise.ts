/** Elementwise ops with broadcasting and their gradients. */
import * as K from "@textcraftor/webgpu-kernels";
import { record } from "../tensor/autograd.ts";
import { runtime } from "../tensor/runtime.ts";
import { Tensor } from "../tensor/tensor.ts";
import { sumToShape } from "./reduce.ts";

type Operand = Tensor | number;

const r = () => runtime().runner;

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
  return record(mapRaw(x, "identity", scale, shift), "affine", [x], (g) => [
    scale === 1 ? g.reshape(g.shape) : mapRaw(g, "identity", scale),
  ]);
}

export function add(a: Tensor, b: Operand): Tensor {
  if (typeof b === "number") return affine(a, 1, b);
  const out = binaryRaw("add", a, b);
  return record(out, "add", [a, b], (g) => [sumToShape(g, a.shape), sumToShape(g, b.shape)]);
}

export function sub(a: Tensor, b: Operand): Tensor {
  if (typeof b === "number") return affine(a, 1, -b);
  const out = binaryRaw("sub", a, b);
  return record(out, "sub", [a, b], (g) => [
    sumToShape(g, a.shape),
    b.requiresGrad ? sumToShapeScaled(g, b.shape, -1) : null,
  ]);
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
const ACTIVATION_GRAD = {
  silu: "siluGrad",
  gelu: "geluGrad",
  quickGelu: "quickGeluGrad",
  sigmoid: "sigmoidGrad",
  relu: "reluGrad",
} as const;

function activation(op: keyof typeof ACTIVATION_GRAD) {
  return (x: Tensor) => record(mapRaw(x, op), op, [x], (g) => [binaryRaw(ACTIVATION_GRAD[op], x, g)]);
}

export const silu = activation("silu");
export const gelu = activation("gelu");
export const quickGelu = activation("quickGelu");
export const sigmoid = activation("sigmoid");
export const relu = activation("relu");

/**
 * value · GELU(gate) for x [..., 2n] split into halves along its last dimension (diffusers' GEGLU), one kernel
 * each way instead of two copies, GELU and a product.
 */
export function geglu(x: Tensor): Tensor {
  const width = x.shape[x.ndim - 1]!;
  if (width % 2) throw new Error(`geglu: the last dimension of [${x.shape}] must split into two equal halves`);
  const shape = { rows: x.size / width, n: width / 2 };
  const out = Tensor.empty([...x.shape.slice(0, -1), shape.n]);
  K.geglu(r(), x.buffer, out.buffer, shape);
  return record(out, "geglu", [x], (g) => {
    const gx = Tensor.empty(x.shape);
    K.gegluBackward(r(), x.buffer, g.buffer, gx.buffer, shape);
    return [gx];
  });
}

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

function reduceProduct(g: Tensor, other: Tensor, shape: readonly number[]): Tensor {
  return sumToShape(binaryRaw("mul", g, other), shape);
}

function sumToShapeScaled(g: Tensor, shape: readonly number[], scale: number): Tensor {
  return mapRaw(sumToShape(g, shape), "identity", scale);
}

/** torch.maximum(a, b); with a number, b is a constant bound and the gradient follows torch.clamp's rule. */
export const maximum = (a: Tensor, b: Operand): Tensor => extremum("maximum", a, b);

/** torch.minimum(a, b); with a number, b is a constant bound and the gradient follows torch.clamp's rule. */
export const minimum = (a: Tensor, b: Operand): Tensor => extremum("minimum", a, b);

/**
 * torch.clamp: the gradient passes where min ≤ x ≤ max, boundaries included, as in PyTorch. The reward gradient
 * reaches the latents through the decoded image's clamp to [0, 1], so saturated pixels must stop it exactly there.
 */
export function clamp(x: Tensor, min: number, max: number): Tensor {
  if (!(min <= max)) throw new Error(`clamp: min ${min} is greater than max ${max}`);
  return minimum(maximum(x, min), max);
}

function extremum(op: "maximum" | "minimum", a: Tensor, b: Operand): Tensor {
  const sign = op === "maximum" ? 1 : -1;
  if (typeof b === "number") {
    const bound = Tensor.full([1], b);
    const out = binaryRaw(op, a, bound);
    // Kernels run in queue order, so the bound may return to the pool before the batch is submitted.
    bound.dispose();
    // g stops only where a lies strictly beyond the bound, sign·(b − a) > 0; f32 subtraction keeps that sign exactly.
    return record(out, op, [a], (g) => [
      binaryRaw("sub", g, binaryRaw("reluGrad", mapRaw(a, "identity", -sign, sign * b), g)),
    ]);
  }
  const out = binaryRaw(op, a, b);
  return record(out, op, [a, b], (g) => {
    // The winner takes the gradient and a tie splits it evenly, as torch does: g_a = ½·(g + g·[d > 0] − g·[d < 0]).
    const d = mapRaw(binaryRaw("sub", a, b), "identity", sign);
    const wins = binaryRaw("reluGrad", d, g),
      loses = binaryRaw("reluGrad", mapRaw(d, "identity", -1), g);
    const ga = mapRaw(binaryRaw("sub", binaryRaw("add", g, wins), loses), "identity", 0.5);
    return [
      a.requiresGrad ? sumToShape(ga, a.shape) : null,
      b.requiresGrad ? sumToShape(binaryRaw("sub", g, ga), b.shape) : null,
    ];
  });
}

// Tensor's arithmetic methods, attached here so that tensor.ts needs no ops (and no import cycle forms).
Tensor.prototype.add = function (this: Tensor, other: Operand) {
  return add(this, other);
};
Tensor.prototype.sub = function (this: Tensor, other: Operand) {
  return sub(this, other);
};
Tensor.prototype.mul = function (this: Tensor, other: Operand) {
  return mul(this, other);
};
Tensor.prototype.div = function (this: Tensor, other: Operand) {
  return div(this, other);
};
Tensor.prototype.neg = function (this: Tensor) {
  return neg(this);
};
