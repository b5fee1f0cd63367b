/**
 * The recipe's data: Noto emoji (Apache-2.0 images) from the `emoji-datasource-google` npm package, each
 * captioned with its Unicode name ("red apple", "dog face"). Only the recipe needs it; it is installed into
 * .cache/ on first use, not into the workspace.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { decode } from "fast-png";

export const EMOJI_PACKAGE = "emoji-datasource-google@16.0.0";

export interface CaptionedImages {
  captions: string[];
  /** [N, 3, size, size] in [0, 1], composited on white. */
  images: Float32Array;
  size: number;
}

interface EmojiEntry {
  name: string | null;
  image: string;
  category: string;
  sort_order: number;
  has_img_google: boolean;
}

/** The package folder, installed with bun into `cacheDir` when absent. */
export function ensureEmojiPackage(cacheDir = resolve(import.meta.dir, "../../../.cache/emoji-data")): string {
  const root = join(cacheDir, "node_modules", "emoji-datasource-google");
  if (existsSync(join(root, "emoji.json"))) return root;
  mkdirSync(cacheDir, { recursive: true });
  if (!existsSync(join(cacheDir, "package.json")))
    writeFileSync(join(cacheDir, "package.json"), JSON.stringify({ name: "emoji-data", private: true }));
  console.log(`installing ${EMOJI_PACKAGE} (the recipe's training images) into ${cacheDir}`);
  const done = spawnSync("bun", ["add", EMOJI_PACKAGE], { cwd: cacheDir, stdio: "inherit" });
  if (done.status !== 0 || !existsSync(join(root, "emoji.json")))
    throw new Error(
      `could not install ${EMOJI_PACKAGE} into ${cacheDir}; install it there by hand (bun add ${EMOJI_PACKAGE}) and rerun`,
    );
  return root;
}

/** Every emoji with a Google image except skin-tone swatches, in the package's sort order. */
export function loadEmoji(root: string, size = 32): CaptionedImages {
  const entries = (JSON.parse(readFileSync(join(root, "emoji.json"), "utf8")) as EmojiEntry[])
    .filter((e) => e.has_img_google && e.name && e.category !== "Component")
    .sort((a, b) => a.sort_order - b.sort_order);
  const images = new Float32Array(entries.length * 3 * size * size);
  const captions = entries.map((e, i) => {
    const png = decode(readFileSync(join(root, "img/google/64", e.image)));
    images.set(toRgb(png, size), i * 3 * size * size);
    return e.name!.toLowerCase();
  });
  return { captions, images, size };
}

/** Any PNG colour type → [3, size, size] floats: alpha-composited on white, then box-filtered down. */
function toRgb(png: ReturnType<typeof decode>, size: number): Float32Array {
  const { width, height } = png;
  if (width !== height || width % size)
    throw new Error(`emoji image is ${width}×${height}; expected a square multiple of ${size}`);
  const rgba = toRgba(png);
  const f = width / size,
    out = new Float32Array(3 * size * size);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const rgb = [0, 0, 0];
      for (let dy = 0; dy < f; dy++)
        for (let dx = 0; dx < f; dx++) {
          const p = ((y * f + dy) * width + x * f + dx) * 4;
          const alpha = rgba[p + 3]!;
          for (let c = 0; c < 3; c++) rgb[c]! += rgba[p + c]! * alpha + (1 - alpha);
        }
      for (let c = 0; c < 3; c++) out[(c * size + y) * size + x] = rgb[c]! / (f * f);
    }
  return out;
}

/** RGBA in [0, 1] from grey, grey+alpha, RGB, RGBA or palette images of 8 or 16 bits. */
function toRgba(png: ReturnType<typeof decode>): Float32Array {
  const { width, height, channels, data, palette } = png;
  const max = png.depth === 16 ? 65535 : 255,
    n = width * height,
    out = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    let px: number[];
    if (palette) {
      const entry = palette[data[i]!]!;
      px = [entry[0]! / 255, entry[1]! / 255, entry[2]! / 255, (entry[3] ?? 255) / 255];
    } else {
      const v = Array.from({ length: channels }, (_, c) => data[i * channels + c]! / max);
      px =
        channels === 1
          ? [v[0]!, v[0]!, v[0]!, 1]
          : channels === 2
            ? [v[0]!, v[0]!, v[0]!, v[1]!]
            : channels === 3
              ? [...v, 1]
              : v;
    }
    out.set(px, i * 4);
  }
  return out;
}
