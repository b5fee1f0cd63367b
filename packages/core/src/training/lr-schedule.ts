/**
 * Learning-rate schedules as diffusers' `get_scheduler` builds them (LambdaLR over optimizer steps): the update
 * made at step s (counted from 0) uses lr · factor(s), so with warmup the first update has lr 0, as in diffusers.
 */
export const LR_SCHEDULERS = ["constant", "constant_with_warmup", "linear", "cosine"] as const;
export type LRScheduler = (typeof LR_SCHEDULERS)[number];

/** The multiplier of the base learning rate for the update at `step` of a `totalSteps` run. */
export function lrFactor(scheduler: LRScheduler, step: number, warmupSteps: number, totalSteps: number): number {
  if (scheduler === "constant") return 1;
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  if (scheduler === "constant_with_warmup") return 1;
  const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  if (scheduler === "linear") return Math.max(0, 1 - progress);
  // Half a cosine period from 1 to 0 (diffusers' num_cycles = 0.5).
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}
