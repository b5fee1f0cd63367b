/**
 * Reverse-mode autograd on a tape. Each op that involves a tensor requiring grad records a `Node`:
 * its inputs and a backward function written with other ops. `backward()` walks the graph in reverse
 * topological order, visiting each node once, summing gradients that meet at one tensor.
 */
import { scope, keep } from "./scope.ts";
import type { Tensor } from "./tensor.ts";

export interface Node {
  name: string;
  inputs: Tensor[];
  /** Gradients for each input (null where an input needs none), given the output's gradient. */
  backward(gradOut: Tensor): (Tensor | null)[];
}

let gradEnabled = true;

export const isGradEnabled = () => gradEnabled;

export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try { return fn(); } finally { gradEnabled = prev; }
}

export function enableGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = true;
  try { return fn(); } finally { gradEnabled = prev; }
}

export function needsGrad(inputs: readonly Tensor[]): boolean {
  return gradEnabled && inputs.some((t) => t.requiresGrad);
}

/** Attaches a node to `out` when any input requires grad. */
export function record(out: Tensor, name: string, inputs: Tensor[], backward: Node["backward"]): Tensor {
  if (needsGrad(inputs)) {
    out.requiresGrad = true;
    out.gradFn = { name, inputs, backward };
  }
  return out;
}

/**
 * Backpropagates from `root` (a scalar unless `gradRoot` is given). Leaf tensors that require grad get
 * `.grad` (accumulated across calls, as in PyTorch); intermediate gradients are freed as soon as used.
 */
export function backward(root: Tensor, gradRoot?: Tensor): void {
  if (!root.requiresGrad) throw new Error("backward(): the tensor does not require grad (did you run under noGrad, or forget requiresGrad on the parameters?)");
  const order = topoSort(root);
  const grads = new Map<Tensor, Tensor>();
  scope(() => {
    const seed = gradRoot ?? (root.size === 1 ? root.onesLike() : null);
    if (!seed) throw new Error(`backward(): root has shape [${root.shape}]; pass a gradient for non-scalar outputs`);
    grads.set(root, seed);
    noGrad(() => {
      for (let i = order.length - 1; i >= 0; i--) {
        const t = order[i]!;
        const g = grads.get(t);
        if (!g) continue;
        grads.delete(t);
        if (!t.gradFn) accumulateLeaf(t, g);
        else {
          const inputGrads = t.gradFn.backward(g);
          const handed = new Set<Tensor>([g]);
          t.gradFn.inputs.forEach((input, k) => {
            let gi = inputGrads[k];
            if (!gi || !input.requiresGrad) return;
            if (!sameShape(gi.shape, input.shape)) throw new Error(`${t.gradFn!.name} backward: gradient shape [${gi.shape}] != input shape [${input.shape}]`);
            // Each map entry must own its handle, since entries are disposed as soon as they are consumed.
            if (handed.has(gi)) gi = gi.reshape(gi.shape);
            handed.add(gi);
            const prev = grads.get(input);
            if (prev) {
              grads.set(input, prev.add(gi));
              prev.dispose();
              gi.dispose();
            } else grads.set(input, gi);
          });
        }
        if (g !== gradRoot) g.dispose();
      }
    });
  });
}

/** Leaf gradients outlive the backward scope; a view keeps the storage alive after `g` is disposed. */
function accumulateLeaf(t: Tensor, g: Tensor): void {
  if (!t.grad) t.grad = keep(g.reshape(t.shape));
  else {
    const sum = keep(t.grad.add(g));
    t.grad.dispose();
    t.grad = sum;
  }
}

function topoSort(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: UNet graphs are deep enough to overflow the JS stack with recursion.
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    const inputs = t.gradFn?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const next = inputs[i]!;
      if (next.requiresGrad && !seen.has(next)) { seen.add(next); stack.push([next, 0]); }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Gradient checkpointing: runs `fn` without recording, keeps only its output, and re-runs it with the tape
 * during backward. Parameters that `fn` closes over get their gradients then too (the inner backward
 * accumulates into every leaf it reaches), so the output is marked as requiring grad whenever grad is on.
 */
export function checkpoint(fn: (...xs: Tensor[]) => Tensor, ...inputs: Tensor[]): Tensor {
  if (!gradEnabled) return fn(...inputs);
  const out = noGrad(() => scope(() => fn(...inputs)));
  out.requiresGrad = true;
  out.gradFn = {
    name: "checkpoint",
    inputs,
    backward: (g) => {
      const detached = inputs.map((x) => x.detach().requireGrad(x.requiresGrad));
      scope(() => enableGrad(() => { const y = fn(...detached); if (y.requiresGrad) backward(y, g); }));
      const grads = detached.map((d) => d.grad);
      detached.forEach((d) => d.dispose());
      return grads;
    },
  };
  return out;
}
