/**
 * TextCraftor's inference controls (paper §4.1) as embedding schedules for `textToImage({ embeddingsAt })`:
 * the original encoder for the first steps and the tuned one for the last S; interpolation
 * c = w·T*(p) + (1−w)·T(p); style mixing Σ wₖ·Tₖ(p). All mix the cond and the uncond halves alike.
 */
import type { StableDiffusion } from "../models/stable-diffusion.ts";
import { noGrad } from "../tensor/autograd.ts";
import { keep, scope } from "../tensor/scope.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { encodePrompts, type TextEncoderLike } from "./text-to-image.ts";

/** A schedule that hands out views, so the per-step disposal never frees the shared embeddings. */
type Schedule = (stepIndex: number, totalSteps: number) => Tensor;
const view = (t: Tensor) => t.reshape(t.shape);

function checkLastSteps(lastSteps: number) {
  if (!Number.isInteger(lastSteps) || lastSteps < 0)
    throw new Error(`the tuned steps must be a non-negative integer (got ${lastSteps})`);
}

/** Original embeddings for steps < total − lastSteps, tuned ones after (the paper evaluates with 15 of 25). */
export function hybridSchedule(original: Tensor, tuned: Tensor, lastSteps: number): Schedule {
  checkLastSteps(lastSteps);
  return (i, total) => {
    if (lastSteps > total) throw new Error(`${lastSteps} tuned steps cannot exceed the ${total} sampling steps`);
    return view(i < total - lastSteps ? original : tuned);
  };
}

/** Σ wₖ·Eₖ; weights should sum to 1 (a convex combination), which is checked. */
export function mixEmbeddings(embeddings: readonly Tensor[], weights: readonly number[]): Tensor {
  if (embeddings.length !== weights.length || !embeddings.length)
    throw new Error(`mixEmbeddings: ${embeddings.length} embeddings for ${weights.length} weights`);
  const total = weights.reduce((a, b) => a + b, 0);
  if (Math.abs(total - 1) > 1e-6)
    throw new Error(`mixing weights must sum to 1 (they sum to ${total}): [${weights.join(", ")}]`);
  return noGrad(() =>
    embeddings.slice(1).reduce((acc, e, k) => acc.add(e.mul(weights[k + 1]!)), embeddings[0]!.mul(weights[0]!)),
  );
}

/** c_w = w·tuned + (1 − w)·original. */
export const interpolateEmbeddings = (original: Tensor, tuned: Tensor, w: number): Tensor =>
  mixEmbeddings([original, tuned], [1 - w, w]);

export interface EncoderMix {
  /** The base model's own encoder: used alone for the first steps. */
  original: TextEncoderLike;
  /** Encoders mixed for the last `lastSteps` steps, with weights summing to 1 (the original may be among them). */
  mix: { encoder: TextEncoderLike; weight: number }[];
  lastSteps: number;
}

/**
 * The paper's controllable generation in one schedule: original embeddings for the first N − S steps, then
 * Σ wₖ·Tₖ(p) (interpolation is the two-encoder case). Call `dispose` after sampling.
 */
export function controlledEmbeddings(
  sd: Pick<StableDiffusion, "tokenizer">,
  prompts: string[],
  negativePrompt: string,
  m: EncoderMix,
) {
  checkLastSteps(m.lastSteps); // before any tensor exists
  // Each result is kept and its intermediates freed, so nothing else outlives the call, in a scope or not.
  const encode = (encoder: TextEncoderLike) =>
    keep(noGrad(() => scope(() => encodePrompts(sd, encoder, prompts, negativePrompt))));
  const original = encode(m.original);
  const parts = m.mix.map(({ encoder }) => (encoder === m.original ? original : encode(encoder)));
  const mixed = keep(
    scope(() =>
      mixEmbeddings(
        parts,
        m.mix.map((e) => e.weight),
      ),
    ),
  );
  return {
    embeddingsAt: hybridSchedule(original, mixed, m.lastSteps),
    dispose() {
      for (const t of new Set([original, ...parts, mixed])) t.dispose();
    },
  };
}
