/**
 * The LAION improved-aesthetic-predictor head: Linear layers under the checkpoint's own indices
 * (`layers.0`, `layers.2`, `layers.4`, `layers.6`, `layers.7`; the missing indices are Dropouts), applied
 * in order with no activation between them (the original's ReLUs are commented out). The layer sizes are
 * read from the checkpoint (768→1024→128→64→16→1 in sac+logos+ava1-l14-linearMSE.pth).
 */
import { Linear, Module, withInitMode, type Tensor, type TensorData } from "@textcraftor/core";

class IndexedLayers extends Module {
  constructor(layers: ReadonlyMap<number, Linear>) {
    super();
    for (const [index, layer] of layers) this.child(String(index), layer);
  }
}

export class AestheticMLP extends Module {
  private readonly ordered: Linear[];
  private readonly indices: number[];

  private constructor(layers: ReadonlyMap<number, Linear>) {
    super();
    this.child("layers", new IndexedLayers(layers));
    this.ordered = [...layers.values()];
    this.indices = [...layers.keys()];
  }

  /** Width of the embedding the head takes (CLIP ViT-L/14's projection_dim, 768, for the published heads). */
  get inFeatures(): number {
    return this.ordered[0]!.inFeatures;
  }

  /** The first layer's weight, as named and shaped in the checkpoint (for errors). */
  get inputLayer(): string {
    return `"layers.${this.indices[0]}.weight" [${this.ordered[0]!.weight.shape}]`;
  }

  /** Builds the head from a state_dict's shapes and loads it (frozen); `source` names the file in errors. */
  static fromStateDict(tensors: ReadonlyMap<string, TensorData>, source: string): AestheticMLP {
    const indices = [...tensors.keys()]
      .flatMap((name) => /^layers\.(\d+)\.weight$/.exec(name)?.[1] ?? [])
      .map(Number)
      .sort((a, b) => a - b);
    if (!indices.length)
      throw new Error(`${source}: no "layers.N.weight" tensors; is this an improved-aesthetic-predictor MLP (.pth)?`);
    const layers = new Map<number, Linear>();
    let width: number | undefined;
    for (const index of indices) {
      const name = `layers.${index}.weight`;
      const shape = tensors.get(name)!.shape;
      if (shape.length !== 2 || (width !== undefined && shape[1] !== width)) {
        throw new Error(
          `${source}: "${name}" has shape [${shape}], expected [out, ${width ?? "in"}] to follow the previous layer`,
        );
      }
      const [out, inFeatures] = shape as [number, number];
      layers.set(
        index,
        withInitMode("none", () => new Linear(inFeatures, out, { bias: tensors.has(`layers.${index}.bias`) })),
      );
      width = out;
    }
    const mlp = new AestheticMLP(layers);
    try {
      if (width !== 1)
        throw new Error(`"layers.${indices.at(-1)}.weight" has ${width} outputs, expected 1 (a single score)`);
      mlp.loadStateDict(new Map(tensors));
    } catch (e) {
      mlp.dispose();
      throw new Error(`${source}: ${(e as Error).message}`);
    }
    return mlp.requiresGrad(false);
  }

  /** embeddings [B, in] (L2-normalised, as the predictor was trained) → scores [B]. */
  forward(embeddings: Tensor): Tensor {
    const out = this.ordered.reduce((x, layer) => layer.forward(x), embeddings);
    return out.reshape([embeddings.shape[0]!]);
  }
}
