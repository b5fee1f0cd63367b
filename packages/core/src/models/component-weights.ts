/**
 * Which files hold a diffusers/transformers component's weights, as the hub lays them out: `stem.safetensors`
 * or `stem.bin`, a sharded checkpoint's `stem.safetensors.index.json` (its `weight_map` names the shards), or
 * only a variant such as `stem.fp16.safetensors` (what `variant="fp16"` downloads fetch).
 */
import { existsSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { LoadedTensor } from "../io/dtypes.ts";
import { readWeights } from "./weights-file.ts";

/** The file to read for the first stem that has any (an index.json stands for its shards). */
export function componentWeightFile(folder: string, stems: string[]): string {
  for (const stem of stems) {
    for (const name of [
      `${stem}.safetensors`,
      `${stem}.safetensors.index.json`,
      `${stem}.bin`,
      `${stem}.bin.index.json`,
    ]) {
      if (existsSync(join(folder, name))) return join(folder, name);
    }
    // Only variants: fp16 holds the same (EMA) weights as the plain file; any other must be the only one.
    const variants = existsSync(folder)
      ? readdirSync(folder)
          .filter((f) => f.startsWith(`${stem}.`) && /^[^.]+\.(safetensors|bin)$/.test(f.slice(stem.length + 1)))
          .sort()
      : [];
    const pick =
      variants.find((f) => f === `${stem}.fp16.safetensors`) ??
      variants.find((f) => f === `${stem}.fp16.bin`) ??
      (variants.length === 1 ? variants[0] : undefined);
    if (pick) return join(folder, pick);
    if (variants.length)
      throw new Error(
        `${folder}: several weight variants (${variants.join(", ")}) and no ${stem}.safetensors: keep the one to use, or name its file`,
      );
  }
  throw new Error(
    `no weights in ${folder}: expected ${stems.map((s) => `${s}.safetensors`).join(" or ")} (or .bin, a sharded .index.json, or a variant such as ${stems[0]}.fp16.safetensors)`,
  );
}

/** Reads the files in order, following an index.json to its shards; a later file's tensor of the same name wins. */
export async function readWeightFiles(files: string[]): Promise<Map<string, LoadedTensor>> {
  const out = new Map<string, LoadedTensor>();
  for (const file of files) {
    const parts = file.endsWith(".index.json") ? await shardsOf(file) : [file];
    for (const part of parts) for (const [name, t] of await readWeights(part)) out.set(name, t);
  }
  return out;
}

/** A component folder's weights: componentWeightFile, read. */
export const readComponentWeights = (folder: string, stems: string[]) =>
  readWeightFiles([componentWeightFile(folder, stems)]);

async function shardsOf(index: string): Promise<string[]> {
  let json: { weight_map?: Record<string, string> };
  try {
    json = JSON.parse(await readFile(index, "utf8"));
  } catch (e) {
    throw new Error(`cannot read ${index}: ${(e as Error).message}`);
  }
  const shards = [...new Set(Object.values(json.weight_map ?? {}))];
  if (!shards.length) throw new Error(`${index}: no "weight_map"; is this a sharded checkpoint index?`);
  const missing = shards.filter((s) => !existsSync(join(dirname(index), s)));
  if (missing.length)
    throw new Error(`${index} names shards that are not there: ${missing.join(", ")}; download them too`);
  return shards.map((s) => join(dirname(index), s));
}
