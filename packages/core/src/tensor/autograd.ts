/**
 * Reverse-mode autograd on a tape. Each op that involves a tensor requiring grad records a `Node`:
 * its inputs and a backward function written with other ops. `backward()` walks the graph in reverse
 * topological order, visiting each node once, summing gradients that meet at one tensor.
 *
 * A node owns what its backward reads, as PyTorch's saved tensors: its inputs and `saved` (statistics such as
 * a norm's mean or attention's log-sum-exp) stay alive, whoever disposes them, until backward has visited the
 * node or its output is freed unvisited. So a scope may close inside a taped forward, and backward frees
 * activations as it goes.
 */
import { scope, keep } from "./scope.ts";
import { sameShape } from "./shape.ts";
import type { Tensor } from "./tensor.ts";

export interface Node {
  name: string;
  inputs: Tensor[];
  /** Tensors other than the inputs that `backward` reads; the output itself needs no listing. */
  saved: Tensor[];
  /** Gradients for each input (null where an input needs none), given the output's gradient. */
  backward(gradOut: Tensor): (Tensor | null)[];
  /** Set once the node has let go of its inputs and saved tensors. */
  released: boolean;
}

/** How many nodes (or running backward passes) hold each tensor; absent means none. */
const holds = new WeakMap<Tensor, number>();
/** Tensors whose owner disposed them while held: freed when the last hold goes. */
const disposeRequested = new WeakSet<Tensor>();
const freeing: Tensor[] = [];
let draining = false;

function hold(t: Tensor): void {
  holds.set(t, (holds.get(t) ?? 0) + 1);
}

function letGo(t: Tensor): void {
  const n = holds.get(t)! - 1;
  if (n > 0) {
    holds.set(t, n);
    return;
  }
  holds.delete(t);
  if (!disposeRequested.delete(t)) return;
  // Freeing a tensor releases its own node, which may free its inputs in turn: a worklist, not recursion, since
  // graphs are thousands of nodes deep.
  freeing.push(t);
  if (draining) return;
  draining = true;
  try {
    while (freeing.length) freeing.pop()!.dispose();
  } finally {
    draining = false;
  }
}

/** Called by `Tensor.dispose`: true when the tape still reads `t`, which is then freed once it no longer does. */
export function deferDispose(t: Tensor): boolean {
  if (!holds.has(t)) return false;
  disposeRequested.add(t);
  return true;
}

/** Lets go of what a node holds: when backward has visited it, or when its output is freed unvisited. */
export function releaseNode(node: Node): void {
  if (node.released) return;
  node.released = true;
  for (const t of node.inputs) letGo(t);
  for (const t of node.saved) letGo(t);
}

let gradEnabled = true;

export const isGradEnabled = () => gradEnabled;

export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function enableGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function needsGrad(inputs: readonly Tensor[]): boolean {
  return gradEnabled && inputs.some((t) => t.requiresGrad);
}

/** Attaches a node to `out` when any input requires grad; it holds `inputs` and `saved` until backward visits it. */
export function record(
  out: Tensor,
  name: string,
  inputs: Tensor[],
  backward: Node["backward"],
  saved: Tensor[] = [],
): Tensor {
  if (needsGrad(inputs)) {
    out.requiresGrad = true;
    out.gradFn = { name, inputs, saved, backward, released: false };
    for (const t of inputs) hold(t);
    for (const t of saved) hold(t);
  }
  return out;
}

/** Used by Tensor.reshape: the gradient of a view is the gradient reshaped back. */
export function recordReshape(out: Tensor, input: Tensor): void {
  record(out, "reshape", [input], (g) => [g.reshape(input.shape)]);
}

/**
 * Backpropagates from `root` (a scalar unless `gradRoot` is given). Leaf tensors that require grad get
 * `.grad` (accumulated across calls, as in PyTorch); intermediate gradients are freed as soon as used.
 */
export function backward(root: Tensor, gradRoot?: Tensor): void {
  if (!root.requiresGrad)
    throw new Error(
      "backward(): the tensor does not require grad (did you run under noGrad, or forget requiresGrad on the parameters?)",
    );
  const order = topoSort(root);
  // Nodes are read up front: a tensor freed mid-pass drops its gradFn, and its node still has to run.
  const nodes = order.map((t) => t.gradFn);
  const spent = nodes.find((n) => n?.released);
  if (spent)
    throw new Error(
      `backward(): the graph through ${spent.name} was already backpropagated and its saved tensors freed; run the forward again`,
    );
  // Each tensor lives until its own node has run (a node may read its output, as exp and softmax do).
  for (const t of order) hold(t);
  let next = order.length - 1;
  const grads = new Map<Tensor, Tensor>();
  try {
    scope(() => {
      const seed = gradRoot ?? (root.size === 1 ? root.onesLike() : null);
      if (!seed) throw new Error(`backward(): root has shape [${root.shape}]; pass a gradient for non-scalar outputs`);
      grads.set(root, seed);
      noGrad(() => {
        for (; next >= 0; next--) {
          const t = order[next]!,
            node = nodes[next];
          const g = grads.get(t);
          if (g) visit(t, node ?? null, g, grads, gradRoot);
          if (node) releaseNode(node);
          letGo(t);
        }
      });
    });
  } finally {
    // A pass that failed still lets go of what it had not reached.
    for (; next >= 0; next--) {
      const node = nodes[next];
      if (node) releaseNode(node);
      letGo(order[next]!);
    }
  }
}

/** Hands t's gradient to its node's inputs (or to t.grad for a leaf). */
function visit(
  t: Tensor,
  node: Node | null,
  g: Tensor,
  grads: Map<Tensor, Tensor>,
  gradRoot: Tensor | undefined,
): void {
  grads.delete(t);
  if (!node) accumulateLeaf(t, g);
  else {
    // The node's temporaries go as soon as it has run, not at the end of the pass.
    const inputGrads = scope(() => node.backward(g));
    const handed = new Set<Tensor>([g]);
    node.inputs.forEach((input, k) => {
      let gi = inputGrads[k];
      if (!gi || !input.requiresGrad) return;
      if (!sameShape(gi.shape, input.shape))
        throw new Error(`${node.name} backward: gradient shape [${gi.shape}] != input shape [${input.shape}]`);
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
      if (next.requiresGrad && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order;
}

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
    saved: [],
    released: false,
    backward: (g) => {
      const detached = inputs.map((x) => x.detach().requireGrad(x.requiresGrad));
      scope(() =>
        enableGrad(() => {
          const y = fn(...detached);
          if (y.requiresGrad) backward(y, g);
        }),
      );
      const grads = detached.map((d) => d.grad);
      detached.forEach((d) => d.dispose());
      return grads;
    },
  };
  for (const t of inputs) hold(t);
  return out;
}
