/**
 * What a run was made from, beside its config.json: the model, the starting text encoder, the rewards and the
 * prompt files (the trainer saves them as run.json). `--resume` takes these when they are not given again, and refuses different ones:
 * another model or reward would not continue the same run.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export interface RunInputs {
  /** null: the bundled tiny model. */
  model: string | null;
  textEncoder: string | null;
  rewards: string[];
  rewardPlugins: string[];
  prompts: string | null;
  evalPrompts: string | null;
}

const FLAGS: Record<keyof RunInputs, string> = {
  model: "--model",
  textEncoder: "--text-encoder",
  rewards: "--reward",
  rewardPlugins: "--reward-plugin",
  prompts: "--prompts",
  evalPrompts: "--eval-prompts",
};

/** Paths made absolute, so a run resumes from any working directory. */
export function absolute(inputs: RunInputs): RunInputs {
  const path = (p: string | null) => (p === null ? null : resolve(p));
  return {
    ...inputs,
    model: path(inputs.model),
    textEncoder: path(inputs.textEncoder),
    rewardPlugins: inputs.rewardPlugins.map((p) => resolve(p)),
    prompts: path(inputs.prompts),
    evalPrompts: path(inputs.evalPrompts),
  };
}

const show = (v: unknown) =>
  v === null || (Array.isArray(v) && !v.length) ? "not given (the defaults)" : JSON.stringify(v);

/** For `--resume`: the saved inputs, each replaced by the given one only where it is the same. */
export function resumeInputs(runDir: string, given: RunInputs): RunInputs {
  const file = join(runDir, "run.json");
  if (!existsSync(file)) return given; // a run from before run.json: what is given now
  const saved = JSON.parse(readFileSync(file, "utf8")) as RunInputs;
  const isGiven = (v: unknown) => (Array.isArray(v) ? v.length > 0 : v !== null);
  const conflicts = (Object.keys(FLAGS) as (keyof RunInputs)[])
    .filter((k) => isGiven(given[k]) && JSON.stringify(given[k]) !== JSON.stringify(saved[k]))
    .map((k) => `${FLAGS[k]} ${show(saved[k])} (now ${show(given[k])})`);
  if (conflicts.length)
    throw new Error(
      `--resume: the run in ${runDir} was made with ${conflicts.join(", ")}; leave these out to use the run's own`,
    );
  return saved;
}
