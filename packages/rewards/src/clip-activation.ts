/**
 * The MLP activation of open_clip/OpenAI-layout CLIP weights, which their tensors cannot tell: OpenAI trained
 * its CLIPs (ViT-L/14 among them) with QuickGELU, LAION's open_clip models use exact GELU, and the wrong one
 * moves image embeddings by about 1 %. Decided from the most direct evidence there is, and said which.
 */
import type { CLIPActivation } from "@textcraftor/core";

export interface ActivationChoice {
  activation: CLIPActivation;
  reason: string;
}

export interface ActivationEvidence {
  /** open_clip_config.json's `quick_gelu`, when the file is there and says. */
  configQuickGelu?: boolean;
  /** The user's `act=` option. */
  option?: CLIPActivation;
  /** The state_dict carries OpenAI's own extra entries (input_resolution, context_length, vocab_size). */
  openAiFormat: boolean;
  /** The weights' path: open_clip names OpenAI weights "openai" and QuickGELU variants "-quickgelu" (file or folder name). */
  path: string;
  /** What the plugin's usual checkpoint needs, with why. */
  fallback: ActivationChoice;
}

const OPENAI_NAME = /openai|quickgelu/i;

export function chooseActivation(e: ActivationEvidence): ActivationChoice {
  if (e.configQuickGelu !== undefined)
    return {
      activation: e.configQuickGelu ? "quick_gelu" : "gelu",
      reason: `open_clip_config.json has quick_gelu: ${e.configQuickGelu}`,
    };
  if (e.option) return { activation: e.option, reason: `the act=${e.option} option` };
  if (e.openAiFormat)
    return {
      activation: "quick_gelu",
      reason:
        "OpenAI's checkpoint format (input_resolution, context_length and vocab_size entries): OpenAI's CLIPs use QuickGELU",
    };
  // Only the file's and its folder's names: a user's own folders say nothing about the weights.
  const name = e.path.split(/[\\/]/).slice(-2).join("/");
  if (OPENAI_NAME.test(name))
    return { activation: "quick_gelu", reason: `the name "${name}" says OpenAI weights or a QuickGELU model` };
  return e.fallback;
}

/** open_clip_config.json's `quick_gelu` (under model_cfg in hub releases), if it has one. */
export function configQuickGelu(json: unknown): boolean | undefined {
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(json)) return undefined;
  const cfg = isObject(json.model_cfg) ? json.model_cfg : json;
  return typeof cfg.quick_gelu === "boolean" ? cfg.quick_gelu : undefined;
}
