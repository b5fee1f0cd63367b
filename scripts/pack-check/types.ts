// Type-checked against the installed tarballs' declarations (tsc --noEmit): the `types` conditions resolve and
// carry real types, not `any`.
import { loadStableDiffusion, textToImage, type StableDiffusion, type Tensor } from "@textcraftor/core";
import { BufferPool } from "@textcraftor/core/internal";
import { builtinRewards } from "@textcraftor/rewards";
import { TINY_MODEL } from "@textcraftor/tiny-model";

const sd: StableDiffusion = await loadStableDiffusion(TINY_MODEL);
const images: Tensor = textToImage(sd, { prompts: ["red apple"], steps: 1 });
// @ts-expect-error: a wrong option type must be an error, which it is not when the declarations are missing.
textToImage(sd, { prompts: "red apple" });
export const used = [images, BufferPool, builtinRewards];
