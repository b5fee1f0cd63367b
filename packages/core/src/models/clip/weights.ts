/** Loading a CLIP model from a checkpoint's tensors, keyed by transformers' names. */
import type { Module, TensorData } from "../../nn/index.ts";

/**
 * Copies the tensors under the model's own top-level names (`text_model.`, `text_projection.`, ...) into
 * it, so one CLIPModel file feeds either tower. Within those names the load is strict, except for
 * `*.embeddings.position_ids`: an int64 index buffer that older transformers saved, not a weight.
 */
export function loadCLIPWeights(model: Module, tensors: ReadonlyMap<string, TensorData>): void {
  const roots = new Set([...model.namedParameters()].map(([name]) => rootOf(name)));
  const own = new Map(
    [...tensors].filter(([name]) => roots.has(rootOf(name)) && !name.endsWith(".embeddings.position_ids")),
  );
  if (own.size === 0) {
    const sample = [...tensors.keys()].slice(0, 3).join(", ");
    throw new Error(
      `${model.constructor.name}: the checkpoint has no tensor under ${[...roots].map((r) => `"${r}."`).join(" or ")} (it holds ${sample || "nothing"}${tensors.size > 3 ? ", ..." : ""}). ` +
        "Strip a wrapper prefix first (e.g. `cond_stage_model.transformer.` in an SD single file), or convert an open_clip checkpoint with openClipToHf.",
    );
  }
  model.loadStateDict(own);
}

const rootOf = (name: string) => name.split(".", 1)[0]!;
