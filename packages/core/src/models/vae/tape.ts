/** Memory policy of the VAE's forward passes, which decide per block whether activations must be kept. */
import { isGradEnabled } from "../../tensor/autograd.ts";
import { scope } from "../../tensor/scope.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import type { Module } from "../../nn/module.ts";

/**
 * Runs `module`'s forward on `x`, freeing its intermediates on return when no tape records them (nothing
 * refers to them then; at 512×512 a decoder would otherwise hold several GB). When the tape records, they
 * are the activations the backward pass reads, and they stay.
 */
export function freeIntermediates(module: Module, x: Tensor, fn: () => Tensor): Tensor {
  return tapeRecords(module, x) ? fn() : scope(fn);
}

/** Whether ops on `x` and `module`'s parameters will be recorded for backward. */
export const tapeRecords = (module: Module, x: Tensor): boolean =>
  isGradEnabled() && (x.requiresGrad || module.parameters().some((p) => p.requiresGrad));
