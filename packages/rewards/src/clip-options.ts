/** The options every CLIP-based reward takes. */
import type { CLIPActivation } from "@textcraftor/core";
import { PREPROCESS_MODES, type PreprocessMode } from "./preprocess.ts";

export const CLIP_OPTIONS: Record<string, string> = {
  preprocess:
    "pool (TextCraftor's adaptive average pool; the default) or resize-crop (CLIP-style short-side resize + center crop)",
  act: "gelu or quick_gelu: the MLP activation of open_clip/OpenAI-layout weights when no open_clip_config.json says (default: from the checkpoint's format and name; OpenAI's CLIPs use quick_gelu)",
};

const ACTIVATIONS: readonly CLIPActivation[] = ["gelu", "quick_gelu"];

/** `activation` is undefined unless act= is given: the checkpoint then decides (clip-activation.ts). */
export function clipOptions(options: Record<string, string>): {
  preprocess: PreprocessMode;
  activation?: CLIPActivation;
} {
  return {
    preprocess: oneOf("preprocess", options.preprocess ?? "pool", PREPROCESS_MODES),
    activation: options.act === undefined ? undefined : oneOf("act", options.act, ACTIVATIONS),
  };
}

function oneOf<T extends string>(key: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value))
    throw new Error(`option ${key}=${value}: expected ${allowed.join(" or ")}`);
  return value as T;
}
