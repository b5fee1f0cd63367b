/**
 * The settings of a generated image as A1111 writes them into its PNG `parameters` text chunk, which A1111's
 * "PNG Info", ComfyUI and image browsers read back: the prompt, `Negative prompt: …` when there is one, then one
 * line of `Key: value` pairs. Also: output names that never overwrite an earlier image.
 */
import { existsSync } from "node:fs";
import { basename, extname, join } from "node:path";
import type { SamplerName } from "@textcraftor/core";

/** A1111's names for our samplers. */
const A1111_SAMPLERS: Record<SamplerName, string> = {
  ddim: "DDIM",
  euler: "Euler",
  "euler-ancestral": "Euler a",
  "dpmpp-2m-karras": "DPM++ 2M Karras",
};

export interface ImageSettings {
  prompt: string;
  negativePrompt: string;
  steps: number;
  sampler: SamplerName;
  guidance: number;
  seed: number;
  width: number;
  height: number;
  model: string;
  /** What TextCraftor added: the tuned encoder(s) and how they were used. */
  extra?: Record<string, string | number>;
}

export function a1111Parameters(s: ImageSettings): string {
  const pairs: [string, string | number][] = [
    ["Steps", s.steps],
    ["Sampler", A1111_SAMPLERS[s.sampler] ?? s.sampler],
    ["CFG scale", s.guidance],
    ["Seed", s.seed],
    ["Size", `${s.width}x${s.height}`],
    ["Model", basename(s.model.replace(/[\\/]+$/, ""), extname(s.model))],
    ...Object.entries(s.extra ?? {}),
  ];
  // A1111 quotes values that hold its separators.
  const value = (v: string | number) => (typeof v === "string" && /[,:\n]/.test(v) ? JSON.stringify(v) : String(v));
  return [
    s.prompt,
    ...(s.negativePrompt ? [`Negative prompt: ${s.negativePrompt}`] : []),
    pairs.map(([k, v]) => `${k}: ${value(v)}`).join(", "),
  ].join("\n");
}

/** `folder/name`, or `name-2`, `name-3`, … before the extension when that file exists. */
export function freshPath(folder: string, name: string): string {
  const ext = extname(name),
    stem = name.slice(0, name.length - ext.length);
  let path = join(folder, name);
  for (let n = 2; existsSync(path); n++) path = join(folder, `${stem}-${n}${ext}`);
  return path;
}
