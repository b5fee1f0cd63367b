/** Shape helpers with no dependencies, so that autograd and the ops share them without an import cycle. */
export const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((v, i) => v === b[i]);
