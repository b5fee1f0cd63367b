export {
  add,
  sub,
  mul,
  div,
  neg,
  affine,
  silu,
  gelu,
  geglu,
  quickGelu,
  sigmoid,
  relu,
  exp,
  log,
  sqrt,
  square,
  tanh,
  maximum,
  minimum,
  clamp,
} from "./elementwise.ts";
export { sum, mean, sumToShape, expandTo } from "./reduce.ts";
export { bmm, matmul, linear, type BmmOptions } from "./matmul.ts";
export { groupNorm, layerNorm, softmax } from "./norm.ts";
export { permute, transpose, slice, concat, chunk } from "./shape.ts";
export { embedding } from "./embedding.ts";
export { scaledDotProductAttention, type AttentionOptions } from "./attention.ts";
export { conv2d, upsampleNearest2x, adaptiveAvgPool2d, type Conv2dParams } from "./conv.ts";
export { randn, rand } from "./random.ts";
export { anyNonFinite } from "./finite.ts";
export { toF16 } from "./cast.ts";
