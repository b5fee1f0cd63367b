/** Refusing to save weights that hold NaN or ±Inf. */
import { anyNonFinite } from "../ops/finite.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** Refuses to continue from a checkpoint holding NaN or ±Inf (one saved before weights were checked): every step would be skipped. */
export async function checkRestoredWeights(
  params: readonly Tensor[],
  checkpointDir: string,
  step: number,
): Promise<void> {
  if (!(await anyNonFinite(params))) return;
  throw new Error(
    `--resume: the step ${step} checkpoint in ${checkpointDir} holds NaN or ±Inf weights, so it is not a good one to continue from; ` +
      `resume from an earlier one (--resume-from ${checkpointDir}/step-NNNNNN) or start the run over.`,
  );
}

/**
 * Refuses to checkpoint weights that hold NaN or ±Inf: finite gradients can still make them so (an update
 * too large for f32), and such a checkpoint must never be called the last good one.
 */
export async function checkFiniteWeights(
  params: readonly Tensor[],
  step: number,
  lastGood: string | null,
): Promise<void> {
  if (!(await anyNonFinite(params))) return;
  throw new Error(
    `after step ${step} the trained weights hold NaN or ±Inf, so they were not saved; ` +
      `the last good checkpoint is ${lastGood ?? "(none yet)"}. Lower the learning rate and resume from that checkpoint or start over.`,
  );
}
