/**
 * LoRA: y = W·x + b + (α/r)·B·A·x on chosen Linear layers, with W frozen and only A [r, in] and B [out, r]
 * trained; B starts at zero so training starts from the base model. A memory-saving option for the text
 * encoder or the UNet (the paper fine-tunes fully). Parameter names follow PEFT: `<layer>.lora_A.weight`.
 */
import { matmul } from "../ops/matmul.ts";
import { noGrad } from "../tensor/autograd.ts";
import { scope } from "../tensor/scope.ts";
import { runtime } from "../tensor/runtime.ts";
import { Rng } from "./init.ts";
import { Linear } from "./layers.ts";
import type { Module } from "./module.ts";

export interface LoRAOptions {
  rank: number;
  /** Scale numerator: the update is (alpha / rank)·B·A. Defaults to the rank (scale 1), as diffusers' LoRA. */
  alpha?: number;
  /** Which Linear layers get an adapter, by dotted path (default: attention projections of CLIP and the UNet). */
  targets?: RegExp;
  seed?: number;
}

export const DEFAULT_LORA_TARGETS = /(q_proj|k_proj|v_proj|out_proj|to_q|to_k|to_v|to_out\.0)$/;

/** Adds adapters; freezes everything else in `root`; returns the adapters' parameters (the trainable set). */
export function applyLoRA(root: Module, o: LoRAOptions) {
  const targets = o.targets ?? DEFAULT_LORA_TARGETS;
  const rng = new Rng(o.seed ?? 0);
  root.requiresGrad(false);
  const layers = [...root.namedModules()].filter(
    (e): e is [string, Linear] => e[1] instanceof Linear && targets.test(e[0]),
  );
  if (!layers.length) throw new Error(`applyLoRA: no Linear layer matches ${targets}`);
  for (const [, layer] of layers) {
    if (layer.adapter) throw new Error("applyLoRA: a layer already has an adapter");
    const down = new Linear(layer.inFeatures, o.rank, { bias: false, rng });
    const up = new Linear(o.rank, layer.outFeatures, { bias: false, rng });
    runtime().runner.commandEncoder().clearBuffer(up.weight.buffer);
    layer.adapter = { down, up, scale: (o.alpha ?? o.rank) / o.rank };
    layer.child("lora_A", down);
    layer.child("lora_B", up);
  }
  return layers.flatMap(([, l]) => [l.adapter!.down.weight, l.adapter!.up.weight]);
}

/** Folds every adapter into its base weight (W += scale·B·A) and removes it: the model exports as a plain one. */
export function mergeLoRA(root: Module): void {
  for (const [, m] of root.namedModules()) {
    if (!(m instanceof Linear) || !m.adapter) continue;
    const { down, up, scale } = m.adapter;
    scope(() =>
      noGrad(() => {
        const merged = m.weight.add(matmul(up.weight, down.weight).mul(scale)); // B [out, r] · A [r, in]
        runtime()
          .runner.commandEncoder()
          .copyBufferToBuffer(merged.buffer, 0, m.weight.buffer, 0, m.weight.size * 4);
      }),
    );
    m.adapter = null;
    m.removeChild("lora_A");
    m.removeChild("lora_B");
    down.dispose();
    up.dispose();
  }
}
