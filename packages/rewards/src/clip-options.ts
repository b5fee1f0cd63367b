/** The options every CLIP-based reward takes. */
import type { CLIPActivation } from "@textcraftor/core";
import { PREPROCESS_MODES, type PreprocessMode } from "./preprocess.ts";

export const CLIP_OPTIONS: Record<string, string> = {
  preprocess: "pool (TextCraftor's adaptive average pool; the default) or resize-crop (CLIP-style short-side resize + center crop)",
  act: "gelu or quick_gelu: the MLP activation of open_clip/OpenAI-layout weights when no open_clip_config.json says (OpenAI's CLIPs use quick_gelu)",
};

const ACTIVATIONS: readonly CLIPActivation[] = ["gelu", "quick_gelu"];

export function clipOptions(options: Record<string, string>, defaultActivation: CLIPActivation): { preprocess: PreprocessMode; activation: CLIPActivation } {
  return {
    preprocess: oneOf("preprocess", options.preprocess ?? "pool", PREPROCESS_MODES),
    activation: oneOf("act", options.act ?? defaultActivation, ACTIVATIONS),
  };
}

function oneOf<T extends string>(key: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw new Error(`option ${key}=${value}: expected ${allowed.join(" or ")}`);
  return value as T;
}
