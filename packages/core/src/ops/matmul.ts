/** Matrix products: `bmm` (batched, optional transposes), `matmul` and `linear`, with their gradients. */
import * as K from "@textcraftor/webgpu-kernels";
import { needsGrad, record } from "../tensor/autograd.ts";
import { runtime } from "../tensor/runtime.ts";
import { sameShape } from "../tensor/shape.ts";
import { Tensor } from "../tensor/tensor.ts";
import { gelu, quickGelu, relu, silu } from "./elementwise.ts";
import { sumToShape } from "./reduce.ts";

const r = () => runtime().runner;

export interface BmmOptions {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
}

/** C[b] = alpha · op(A[b]) · op(B[b]) for A [B, M, K] (or [B, K, M] with transA) and B [B, K, N] (or [B, N, K]). */
export function bmm(a: Tensor, b: Tensor, o: BmmOptions = {}): Tensor {
  const { transA = false, transB = false, alpha = 1 } = o;
  if (a.ndim !== 3 || b.ndim !== 3 || a.shape[0] !== b.shape[0])
    throw new Error(`bmm: expected [B,·,·] operands with equal batch, got [${a.shape}] and [${b.shape}]`);
  const [batch, a1, a2] = a.shape as [number, number, number];
  const [m, k] = transA ? [a2, a1] : [a1, a2];
  const [kb, n] = transB ? [b.shape[2]!, b.shape[1]!] : [b.shape[1]!, b.shape[2]!];
  if (k !== kb)
    throw new Error(
      `bmm: inner dimensions differ (${k} vs ${kb}) for [${a.shape}]${transA ? "ᵀ" : ""} · [${b.shape}]${transB ? "ᵀ" : ""}`,
    );
  const out = Tensor.empty([batch, m, n]);
  K.matmul(r(), a.buffer, b.buffer, out.buffer, { m, n, k, batch, transA, transB, alpha });
  return record(out, "bmm", [a, b], (g) => [
    a.requiresGrad
      ? transA
        ? bmm(b, g, { transA: transB, transB: true, alpha })
        : bmm(g, b, { transB: !transB, alpha })
      : null,
    b.requiresGrad
      ? transB
        ? bmm(g, a, { transA: true, transB: transA, alpha })
        : bmm(a, g, { transA: !transA, alpha })
      : null,
  ]);
}

/** a [..., M, K] · b [K, N] (b shared across the leading dims) or equal-batch [..., K, N]. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const m = a.shape[a.ndim - 2] ?? 1,
    k = a.shape[a.ndim - 1]!;
  const lead = a.shape.slice(0, -2);
  if (b.ndim === 2) {
    const rows = a.size / k;
    return linearNoBias(a.reshape([rows, k]), b, false).reshape([...lead, m, b.shape[1]!]);
  }
  const batch = lead.reduce((x, y) => x * y, 1);
  const out = bmm(a.reshape([batch, m, k]), b.reshape([batch, k, b.shape[b.ndim - 1]!]));
  return out.reshape([...lead, m, b.shape[b.ndim - 1]!]);
}

/**
 * y = act(x · wᵀ + bias) + residual for x [..., in] and w [out, in] (PyTorch's nn.Linear layout). The bias,
 * the residual and (without autograd) the activation are fused into the GEMM epilogue; with autograd an
 * activation runs as its own op so its backward sees the pre-activation, and the residual is added after it.
 */
export function linear(
  x: Tensor,
  w: Tensor,
  bias?: Tensor | null,
  activation: K.MatmulActivation = "none",
  residual?: Tensor | null,
): Tensor {
  const [outF, inF] = w.shape as [number, number];
  if (x.shape[x.ndim - 1] !== inF)
    throw new Error(`linear: input features ${x.shape[x.ndim - 1]} != weight [${w.shape}] in-features ${inF}`);
  const lead = x.shape.slice(0, -1);
  if (residual && !sameShape(residual.shape, [...lead, outF]))
    throw new Error(`linear: residual [${residual.shape}] != output [${[...lead, outF]}]`);
  const rows = x.size / inF;
  const x2 = x.reshape([rows, inF]);
  if (!needsGrad([x, w, ...(bias ? [bias] : []), ...(residual ? [residual] : [])])) {
    const out = Tensor.empty([...lead, outF]);
    K.matmul(r(), x2.buffer, w.buffer, out.buffer, {
      m: rows,
      n: outF,
      k: inF,
      transB: true,
      bias: bias?.buffer,
      activation,
      residual: residual?.buffer,
    });
    return out;
  }
  if (activation === "none") return linearNoBias(x2, w, true, bias, residual).reshape([...lead, outF]);
  const y = ACTIVATIONS[activation](linearNoBias(x2, w, true, bias)).reshape([...lead, outF]);
  return residual ? y.add(residual) : y;
}

const ACTIVATIONS = { silu, gelu, quickGelu, relu } as const;

/**
 * x [rows, in] · (transW ? wᵀ : w) (+ bias, + residual, fused into the GEMM epilogue), with the weight gradient
 * summed over rows in one GEMM and the bias gradient as a column sum; the residual's gradient is the output's.
 */
function linearNoBias(x: Tensor, w: Tensor, transW: boolean, bias?: Tensor | null, residual?: Tensor | null): Tensor {
  const rows = x.shape[0]!,
    inF = x.shape[1]!;
  const outF = transW ? w.shape[0]! : w.shape[1]!;
  const out = Tensor.empty([rows, outF]);
  K.matmul(r(), x.buffer, w.buffer, out.buffer, {
    m: rows,
    n: outF,
    k: inF,
    transB: transW,
    bias: bias?.buffer,
    residual: residual?.buffer,
  });
  const inputs = [x, w, ...(bias ? [bias] : []), ...(residual ? [residual] : [])];
  return record(out, "linear", inputs, (g) => {
    let gx: Tensor | null = null,
      gw: Tensor | null = null;
    if (x.requiresGrad) {
      gx = Tensor.empty(x.shape);
      K.matmul(r(), g.buffer, w.buffer, gx.buffer, { m: rows, n: inF, k: outF, transB: !transW });
    }
    if (w.requiresGrad) {
      gw = Tensor.empty(w.shape);
      // transW: dW [out, in] = gᵀ·x ; else dW [in, out] = xᵀ·g. Both contract over the rows.
      if (transW) K.matmul(r(), g.buffer, x.buffer, gw.buffer, { m: outF, n: inF, k: rows, transA: true });
      else K.matmul(r(), x.buffer, g.buffer, gw.buffer, { m: inF, n: outF, k: rows, transA: true });
    }
    const grads = [gx, gw];
    if (bias) grads.push(bias.requiresGrad ? sumToShape(g, bias.shape) : null);
    if (residual) grads.push(residual.requiresGrad ? g.reshape(residual.shape) : null);
    return grads;
  });
}
