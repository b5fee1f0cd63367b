/**
 * Reward specs, as the CLI's `--reward` takes them:
 *
 *   name[=weight][:weights=PATH][:key=value]...
 *
 * e.g. `aesthetic=3:weights=/models/aesthetic`, `clip=50:weights=/models/ViT-g-14:preprocess=resize-crop`,
 * `colorfulness`. The weight γ defaults to 1 and may be negative (to penalise). `weights` is where the
 * reward's files are; other keys are the plugin's options (`cli rewards` lists them). A ":" starts a new
 * key only when `key=` follows it, so paths with colons (C:\models) survive.
 */
export interface RewardSpec {
  name: string;
  /** γ in the trainer's Σ γ·R. */
  weight: number;
  weights?: string;
  options: Record<string, string>;
}

const SYNTAX = "name[=weight][:weights=PATH][:key=value]...";

export function parseRewardSpec(text: string): RewardSpec {
  const [head = "", ...pairs] = text.trim().split(/:(?=[A-Za-z_][\w-]*=)/);
  const [name = "", weightText, ...extra] = head.split("=");
  const fail = (problem: string): never => {
    throw new Error(`reward spec "${text}": ${problem}; the syntax is ${SYNTAX}`);
  };
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(name))
    fail(`"${name}" is not a reward name (lowercase letters, digits, "-" or "_")`);
  if (extra.length) fail(`"${head}" has more than one "="`);
  const weight = weightText === undefined ? 1 : Number(weightText);
  if (weightText?.trim() === "" || !Number.isFinite(weight)) fail(`the weight "${weightText}" is not a number`);

  const spec: RewardSpec = { name, weight, options: {} };
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    const key = pair.slice(0, at),
      value = pair.slice(at + 1);
    if (value === "") fail(`"${key}=" has no value`);
    if (key === "weights" ? spec.weights !== undefined : key in spec.options) fail(`"${key}" is given twice`);
    if (key === "weights") spec.weights = value;
    else spec.options[key] = value;
  }
  return spec;
}
