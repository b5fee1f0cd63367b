/**
 * Builds the quality-knob page into a folder a web server can serve as it is:
 *
 *   index.html, main.js      the page and its bundle (the core, bundled for browsers)
 *   model/                   the bundled tiny model, plus tokenizer/merges.txt (a browser cannot import the BPE package)
 *   encoder/                 the tuned text encoder: config.json (when the run wrote one) and its weights file
 *
 *   bun run example:browser-knob [--encoder PATH] [--out DIR] [--serve [--port N]]
 *
 * PATH is a run's `text_encoder/` folder or a weights file; default runs/textcraftor/text_encoder, what
 * `bun run cli train` writes. --serve serves the folder afterwards (open the printed address in a browser with WebGPU).
 */
import { copyFile, cp, mkdir, rm, stat, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { clipMergesText } from "@textcraftor/core";
import { TINY_MODEL } from "@textcraftor/tiny-model";
import { serveFolder } from "./serve.ts";

const here = import.meta.dir;
export const DEFAULT_ENCODER = "runs/textcraftor/text_encoder";
/** The weights files the page's loader looks for in encoder/ (see readComponentFiles). */
const ENCODER_WEIGHTS = ["model.safetensors", "model.bin", "pytorch_model.safetensors", "pytorch_model.bin"];

export async function buildBrowserKnob({ encoder = DEFAULT_ENCODER, out = join(here, "dist") } = {}): Promise<string> {
  const encoderFiles = await encoderCopies(encoder);
  await rm(out, { recursive: true, force: true });
  const bundle = await Bun.build({
    entrypoints: [join(here, "main.ts")],
    outdir: out,
    target: "browser",
    format: "esm",
    naming: "[name].js",
    // The Bun and Node bindings are dynamic imports the browser never reaches.
    external: ["bun-webgpu", "webgpu"],
  });
  if (!bundle.success) throw new AggregateError(bundle.logs, "bundling the page failed");
  await copyFile(join(here, "index.html"), join(out, "index.html"));
  await cp(TINY_MODEL, join(out, "model"), { recursive: true });
  await mkdir(join(out, "model/tokenizer"));
  await writeFile(join(out, "model/tokenizer/merges.txt"), await clipMergesText());
  await mkdir(join(out, "encoder"));
  for (const [from, name] of encoderFiles) await copyFile(from, join(out, "encoder", name));
  return out;
}

/** The encoder's files and their names in encoder/, checked before anything is written. */
async function encoderCopies(encoder: string): Promise<[from: string, name: string][]> {
  const isFolder = await stat(encoder).then(
    (s) => s.isDirectory(),
    () => null,
  );
  if (isFolder === null)
    throw new Error(
      `no tuned text encoder at ${encoder}: run \`bun run cli train\` (minutes on a CPU; it writes ${DEFAULT_ENCODER}), or pass --encoder PATH (a text_encoder/ folder or a weights file)`,
    );
  if (!isFolder) {
    const name = encoder.endsWith(".safetensors")
      ? "model.safetensors"
      : /\.(bin|pt|pth)$/.test(encoder)
        ? "model.bin"
        : null;
    if (!name) throw new Error(`${encoder}: expected a .safetensors, .bin, .pt or .pth weights file`);
    return [[encoder, name]];
  }
  const present = async (name: string) => ((await Bun.file(join(encoder, name)).exists()) ? name : null);
  const [weights] = (await Promise.all(ENCODER_WEIGHTS.map(present))).filter((name) => name !== null);
  if (!weights)
    throw new Error(`${encoder} holds no text encoder weights: expected ${ENCODER_WEIGHTS.join(", ")} (one file)`);
  const copies: [string, string][] = [[join(encoder, weights), weights]];
  // Without its config.json, the page builds the encoder from the bundled model's text encoder config.
  if (await present("config.json")) copies.push([join(encoder, "config.json"), "config.json"]);
  return copies;
}

if (import.meta.main) {
  try {
    const { values } = parseArgs({
      options: {
        encoder: { type: "string" },
        out: { type: "string" },
        serve: { type: "boolean" },
        port: { type: "string", default: "8080" },
      },
    });
    const out = await buildBrowserKnob({ encoder: values.encoder, out: values.out && resolve(values.out) });
    console.log(`built ${out} (tuned encoder: ${values.encoder ?? DEFAULT_ENCODER})`);
    if (values.serve) {
      const server = serveFolder(out, Number(values.port));
      console.log(`serving ${basename(out)}/ at ${server.url} — open it in a browser with WebGPU; Ctrl-C stops`);
    }
  } catch (e) {
    console.error(`example:browser-knob: ${(e as Error).message}`);
    process.exit(2);
  }
}
