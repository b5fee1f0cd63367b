/** Embedding geometry shared by the CLIP-based rewards. */
import { sqrt, square, sum, type Tensor } from "@textcraftor/core";

/** Rows of x [B, D] scaled to unit length (no epsilon, as the reward models' own code divides by the norm). */
export function l2Normalize(x: Tensor): Tensor {
  return x.div(sqrt(sum(square(x), 1, true)));
}

/** Cosine similarity of matching rows, [B]. */
export function cosineSimilarity(a: Tensor, b: Tensor): Tensor {
  return sum(l2Normalize(a).mul(l2Normalize(b)), 1);
}
