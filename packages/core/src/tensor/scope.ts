/**
 * Scopes make tensor lifetimes explicit: every tensor created inside `scope(fn)` is disposed when `fn`
 * returns or throws, except the tensors it returns (which move to the enclosing scope) and those passed to `keep`.
 * Tensors created outside any scope (model parameters) live until `dispose()`.
 */
import type { Tensor } from "./tensor.ts";

const stack: Set<Tensor>[] = [];

export function track(t: Tensor): void {
  stack[stack.length - 1]?.add(t);
}

/** Takes `t` out of every scope: the caller now owns it. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of stack) s.delete(t);
  return t;
}

export function scope<T>(fn: () => T): T {
  const mine = new Set<Tensor>();
  stack.push(mine);
  let result: T;
  try {
    result = fn();
    if (result instanceof Promise)
      throw new Error("scope(fn) takes a synchronous function: await outside it, or use scopeAsync");
  } catch (e) {
    abandon(mine);
    throw e;
  } finally {
    stack.pop();
  }
  return finish(mine, result);
}

/** Like `scope` for async work; do not interleave two scopeAsync calls (the scope stack is shared). */
export async function scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  const mine = new Set<Tensor>();
  stack.push(mine);
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    abandon(mine);
    throw e;
  } finally {
    stack.splice(stack.indexOf(mine), 1);
  }
  return finish(mine, result);
}

/** A scope that throws frees what it made (kept tensors excepted), so an error leaks no GPU memory. */
function abandon(mine: Set<Tensor>): void {
  for (const t of mine) t.dispose();
}

function finish<T>(mine: Set<Tensor>, result: T): T {
  const escaped = new Set<Tensor>();
  collect(result, escaped);
  for (const t of mine) if (!escaped.has(t)) t.dispose();
  for (const t of escaped) if (mine.has(t)) track(t);
  return result;
}

function collect(value: unknown, into: Set<Tensor>, depth = 0): void {
  if (!value || typeof value !== "object" || depth > 4) return;
  if ((value as Tensor).isTensor === true) {
    into.add(value as Tensor);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collect(v, into, depth + 1);
  else if (value.constructor === Object || value instanceof Map) {
    for (const v of value instanceof Map ? value.values() : Object.values(value)) collect(v, into, depth + 1);
  }
}
