import type { SchedulerConfig, TimestepSpacing } from "./config.ts";
import { DDIMScheduler } from "./ddim.ts";
import { DPMSolverMultistepScheduler } from "./dpm-solver.ts";
import { EulerAncestralDiscreteScheduler } from "./euler-ancestral.ts";
import { EulerDiscreteScheduler } from "./euler.ts";
import type { Sampler } from "./sampler.ts";
import type { Spacing } from "./timesteps.ts";

export interface SamplerSettings {
  steps: number;
  /** Timestep spacing; unset, the model's scheduler config decides. */
  spacing?: Spacing;
}

interface SamplerEntry<S extends Sampler> {
  description: string;
  create(config: SchedulerConfig, settings: SamplerSettings): S;
}

const entry = <S extends Sampler>(e: SamplerEntry<S>) => e;

/** The samplers by the names the CLI, the pipelines and the trainer use. Training samples with DDIM. */
export const samplers = {
  ddim: entry({
    description: "DDIM, deterministic (η = 0); the sampler TextCraftor trains with",
    create(config, { steps, spacing }) {
      const s = new DDIMScheduler(config);
      s.setTimesteps(steps, { spacing });
      return s;
    },
  }),
  euler: entry({
    description: "Euler in σ-space (diffusers' EulerDiscreteScheduler)",
    create(config, { steps, spacing }) {
      const s = new EulerDiscreteScheduler(config);
      s.setTimesteps(steps, { spacing: diffusersSpacing("euler", spacing) });
      return s;
    },
  }),
  "euler-ancestral": entry({
    description: "Euler ancestral: Euler plus fresh noise each step (stochastic, seeded)",
    create(config, { steps, spacing }) {
      const s = new EulerAncestralDiscreteScheduler(config);
      s.setTimesteps(steps, { spacing: diffusersSpacing("euler-ancestral", spacing) });
      return s;
    },
  }),
  "dpmpp-2m-karras": entry({
    description: "DPM-Solver++(2M) with Karras sigmas (A1111's and ComfyUI's default): good images in 20-25 steps",
    create(config, { steps, spacing }) {
      if (spacing !== undefined)
        throw new Error(
          `dpmpp-2m-karras: its Karras sigmas set the timesteps, so a spacing ("${spacing}") does not apply; leave it unset`,
        );
      const s = new DPMSolverMultistepScheduler(config);
      s.setTimesteps(steps);
      return s;
    },
  }),
};

export type SamplerName = keyof typeof samplers;
export const samplerNames = Object.keys(samplers) as SamplerName[];

export function isSamplerName(name: string): name is SamplerName {
  return Object.hasOwn(samplers, name);
}

/** A sampler by name, its timesteps set for `settings.steps` steps. */
export function createSampler<N extends SamplerName>(
  name: N,
  config: SchedulerConfig,
  settings: SamplerSettings,
): ReturnType<(typeof samplers)[N]["create"]>;
export function createSampler(name: string, config: SchedulerConfig, settings: SamplerSettings): Sampler;
export function createSampler(name: string, config: SchedulerConfig, settings: SamplerSettings): Sampler {
  if (!isSamplerName(name)) throw new Error(`unknown sampler "${name}": use one of ${samplerNames.join(", ")}`);
  return samplers[name].create(config, settings);
}

function diffusersSpacing(name: string, spacing: Spacing | undefined): TimestepSpacing | undefined {
  if (spacing === "textcraftor")
    throw new Error(
      `the "textcraftor" timestep spacing is TextCraftor's DDIM schedule; use it with ddim, or "leading"/"trailing"/"linspace" with ${name}`,
    );
  return spacing;
}
