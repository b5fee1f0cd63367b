import { parseSchedulerConfig } from "./config.ts";
import { DDIMScheduler } from "./ddim.ts";
import { EulerDiscreteScheduler } from "./euler.ts";

/**
 * A sampler from a diffusers scheduler_config.json, of the class it names or of `as` (like `X.from_config(config)`).
 * SD 1.5 ships a PNDMScheduler config; we sample it with DDIM, as TextCraftor does: same betas and timestep
 * rules, but PNDM's multistep (PLMS) update is not reproduced, so images differ from a stock PNDM pipeline.
 */
export function schedulerFromConfig(
  json: Record<string, unknown>,
  as: "DDIMScheduler" | "EulerDiscreteScheduler" = classFor(json._class_name),
): DDIMScheduler | EulerDiscreteScheduler {
  return as === "DDIMScheduler"
    ? new DDIMScheduler(parseSchedulerConfig(json, as))
    : new EulerDiscreteScheduler(parseSchedulerConfig(json, as));
}

function classFor(name: unknown): "DDIMScheduler" | "EulerDiscreteScheduler" {
  if (name === "PNDMScheduler" || name === "DDIMScheduler") return "DDIMScheduler";
  if (name === "EulerDiscreteScheduler") return name;
  throw new Error(`scheduler ${JSON.stringify(name)} is not supported (DDIM, PNDM as DDIM, EulerDiscrete)`);
}
