/** A user's reward plugin from a file (`--reward-plugin ./my-reward.ts`), checked before it is registered. */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { RewardPlugin } from "@textcraftor/core";

const SHAPE =
  'export default { name, description, needs: "image" | "image+prompt", load: async (context) => ({ score(images, prompts) }) } satisfies RewardPlugin';

/** Imports a .ts/.js file and returns its default export (or its export named `reward`), checked to be a RewardPlugin. */
export async function loadRewardPlugin(path: string): Promise<RewardPlugin> {
  const file = resolve(path);
  if (!existsSync(file)) throw new Error(`reward plugin ${path} not found (looked at ${file})`);
  let module: Record<string, unknown>;
  try {
    module = await import(pathToFileURL(file).href);
  } catch (e) {
    throw new Error(`cannot import reward plugin ${path}: ${(e as Error).message}`);
  }
  const candidate = module.default ?? module.reward;
  if (candidate === undefined)
    throw new Error(`${path} exports no reward plugin: add a default export (or one named "reward"): ${SHAPE}`);
  return checkRewardPlugin(candidate, path);
}

/** Throws, listing every problem, unless `value` has a RewardPlugin's shape; `source` names it in the message. */
export function checkRewardPlugin(value: unknown, source: string): RewardPlugin {
  const p = (typeof value === "object" && value !== null ? value : {}) as Record<string, unknown>;
  const problems = [
    typeof value !== "object" || value === null ? `it is ${value === null ? "null" : typeof value}, not an object` : "",
    typeof p.name === "string" && /^[a-z0-9][a-z0-9_-]*$/.test(p.name)
      ? ""
      : `name must be a lowercase string of letters, digits, "-" or "_" (got ${JSON.stringify(p.name)})`,
    typeof p.description === "string" ? "" : "description must be a string (one line for `cli rewards`)",
    p.needs === "image" || p.needs === "image+prompt"
      ? ""
      : `needs must be "image" or "image+prompt" (got ${JSON.stringify(p.needs)})`,
    typeof p.load === "function" ? "" : "load must be a function (context) => Promise<{ score(images, prompts) }>",
    p.weightFiles === undefined || (Array.isArray(p.weightFiles) && p.weightFiles.every((f) => typeof f === "string"))
      ? ""
      : "weightFiles must be a list of strings",
    p.options === undefined ||
    (typeof p.options === "object" &&
      p.options !== null &&
      Object.values(p.options).every((h) => typeof h === "string"))
      ? ""
      : "options must map each option key to a one-line help string",
  ].filter(Boolean);
  if (problems.length) throw new Error(`${source} is not a reward plugin: ${problems.join("; ")}. Expected: ${SHAPE}`);
  return value as RewardPlugin;
}
