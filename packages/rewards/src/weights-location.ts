/** Loading a reward's files: finding them on disk, and the messages and cleanup every plugin shares. */
import { existsSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { RewardContext, RewardPlugin } from "@textcraftor/core";

/** `context.weights`, checked to exist; without it, an error saying which files the reward expects. */
export function requireWeights(plugin: Pick<RewardPlugin, "name" | "weightFiles">, context: RewardContext): string {
  if (!context.weights) {
    const files = plugin.weightFiles?.length ? `; it expects ${plugin.weightFiles.join("; ")}` : "";
    throw new Error(
      `reward "${plugin.name}" needs weights: add :weights=PATH to its spec (--reward ${plugin.name}=1:weights=PATH)${files}`,
    );
  }
  return requirePath(context.weights, `weights of reward "${plugin.name}"`);
}

export function requirePath(path: string, what: string): string {
  if (!existsSync(path)) throw new Error(`${path} does not exist (${what})`);
  return path;
}

const WEIGHT_EXTENSIONS = /\.(safetensors|bin|pt|pth|ckpt)$/;

/** The weights files directly in `folder`, sorted; `extensions` narrows them (e.g. /\.pth$/). */
export function weightFilesIn(folder: string, extensions = WEIGHT_EXTENSIONS): string[] {
  return readdirSync(folder)
    .filter((name) => extensions.test(name))
    .sort()
    .map((name) => join(folder, name));
}

export async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
}

/** Runs `load`; if it fails, frees what was already loaded (GPU memory is not garbage-collected). */
export async function disposeOnError<T>(loaded: { dispose(): void }, load: () => T | Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (e) {
    loaded.dispose();
    throw e;
  }
}
