/**
 * Older VAE checkpoints name the mid-block attention differently from current diffusers. The stock SD 1.5
 * `vae/diffusion_pytorch_model.bin` uses `query/key/value/proj_attn` (diffusers renames them on load), and
 * weights taken from the original LDM checkpoints are 1×1 convolutions [C, C, 1, 1] rather than linears.
 */

const LEGACY_NAMES: Record<string, string> = { query: "to_q", key: "to_k", value: "to_v", proj_attn: "to_out.0" };
const LEGACY = /^(.*\bmid_block\.attentions\.\d+\.)(query|key|value|proj_attn)\.(weight|bias)$/;
const PROJECTION_WEIGHT = /\bmid_block\.attentions\.\d+\.(to_q|to_k|to_v|to_out\.0)\.weight$/;

/**
 * Returns `tensors` with legacy attention names mapped to `to_q/to_k/to_v/to_out.0` and conv-shaped
 * [C, C, 1, 1] projection weights viewed as [C, C] (same data, row-major). Other tensors pass through.
 */
export function renameLegacyVaeAttention<T extends { shape: readonly number[] }>(
  tensors: ReadonlyMap<string, T>,
): Map<string, T> {
  const out = new Map<string, T>();
  for (const [name, tensor] of tensors) {
    const legacy = LEGACY.exec(name);
    const renamed = legacy ? `${legacy[1]}${LEGACY_NAMES[legacy[2]!]}.${legacy[3]}` : name;
    if (legacy && tensors.has(renamed)) {
      throw new Error(
        `VAE checkpoint holds both "${name}" and "${renamed}": keep one naming (legacy or current), not both`,
      );
    }
    out.set(renamed, PROJECTION_WEIGHT.test(renamed) ? squeezeConv1x1(renamed, name, tensor) : tensor);
  }
  return out;
}

function squeezeConv1x1<T extends { shape: readonly number[] }>(renamed: string, original: string, tensor: T): T {
  const s = tensor.shape;
  if (s.length === 2) return tensor;
  if (s.length === 4 && s[2] === 1 && s[3] === 1) return { ...tensor, shape: [s[0]!, s[1]!] };
  throw new Error(
    `VAE attention weight "${original}" has shape [${s}]; expected [C, C] or a 1×1 convolution [C, C, 1, 1] (for "${renamed}")`,
  );
}
