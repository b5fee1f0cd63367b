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
  const encoderKind = await stat(encoder).then(
    (s) => (s.isDirectory() ? "folder" : "file"),
    () => null,
  );
  if (!encoderKind)
    throw new Error(
      `no tuned text encoder at ${encoder}: run \`bun run cli train\` (minutes on a CPU; it writes ${DEFAULT_ENCODER}), or pass --encoder PATH (a text_encoder/ folder or a weights file)`,
    );
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
  await copyEncoder(encoder, encoderKind, join(out, "encoder"));
  return out;
}

async function copyEncoder(from: string, kind: "folder" | "file", to: string) {
  await mkdir(to);
  if (kind === "file") {
    const name = from.endsWith(".safetensors")
      ? "model.safetensors"
      : /\.(bin|pt|pth)$/.test(from)
        ? "model.bin"
        : null;
    if (!name) throw new Error(`${from}: expected a .safetensors, .bin, .pt or .pth weights file`);
    await copyFile(from, join(to, name));
    return;
  }
  const present = async (name: string) => (await Bun.file(join(from, name)).exists()) && name;
  const weights = (await Promise.all(ENCODER_WEIGHTS.map(present))).find(Boolean);
  if (!weights)
    throw new Error(`${from} holds no text encoder weights: expected ${ENCODER_WEIGHTS.join(", ")} (one file)`);
  await copyFile(join(from, weights), join(to, weights));
  if (await present("config.json")) await copyFile(join(from, "config.json"), join(to, "config.json"));
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      encoder: { type: "string" },
      out: { type: "string" },
      serve: { type: "boolean" },
      port: { type: "string", default: "8080" },
    },
  });
  try {
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
