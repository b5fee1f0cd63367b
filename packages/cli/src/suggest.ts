/** "Did you mean": ours for a diffusers/kohya training-script name, else the known name closest to a mistyped one. */

/** The names diffusers' and kohya's training scripts use for settings we name otherwise (kebab-case). */
const TRAINING_SCRIPT_NAMES: Record<string, string> = {
  "learning-rate": "lr",
  "train-batch-size": "batch-size",
  "max-train-steps": "steps",
  "num-inference-steps": "inference-steps",
  "guidance-scale": "guidance",
  "resume-from-checkpoint": "resume-from",
  "checkpointing-steps": "checkpoint-every",
  "save-every-n-steps": "checkpoint-every",
  "output-dir": "run-dir",
  "pretrained-model-name-or-path": "model",
  "use-ema": "ema-decay",
  rank: "lora-rank",
  "network-dim": "lora-rank",
  "network-alpha": "lora-alpha",
  "validation-steps": "sample-every",
  "validation-prompt": "eval-prompts",
  "save-total-limit": "checkpoints-total-limit",
  "num-train-epochs": "steps",
  "lr-warmup": "lr-warmup-steps",
  height: "size",
  width: "size",
  "num-images-per-prompt": "num-images",
  "gradient-accumulation-steps": "grad-accum",
};

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** Our flag for a name diffusers' or kohya's training scripts use (snake or kebab case), or null. */
export const trainingScriptName = (name: string): string | null =>
  TRAINING_SCRIPT_NAMES[name.replace(/_/g, "-")] ?? null;

/**
 * Ours for a training-script name (snake or kebab case) when `known` has it, else the closest of `known` when it is
 * near enough to be a typo (a third of its length), else null.
 */
export function closest(name: string, known: readonly string[]): string | null {
  const ours = trainingScriptName(name);
  if (ours && known.includes(ours)) return ours;
  let best: string | null = null,
    bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}
