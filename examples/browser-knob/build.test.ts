/** The page's build: what it lays out for the server, and bad encoder paths refused before anything is written. */
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TINY_MODEL } from "@textcraftor/tiny-model";
import { buildBrowserKnob } from "./build.ts";

const dir = mkdtempSync(join(tmpdir(), "tc-knob-build-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const weightsFile = join(TINY_MODEL, "text_encoder/model.safetensors");

test("a weights file becomes encoder/model.safetensors beside the bundle, the model and its merges.txt", async () => {
  const out = await buildBrowserKnob({ encoder: weightsFile, out: join(dir, "site") });
  expect(readdirSync(out).sort()).toEqual(["encoder", "index.html", "main.js", "model"]);
  expect(readdirSync(join(out, "encoder"))).toEqual(["model.safetensors"]);
  expect(readdirSync(join(out, "model")).sort()).toEqual([
    "model_index.json",
    "scheduler",
    "text_encoder",
    "tokenizer",
    "unet",
    "vae",
  ]);
  expect((await Bun.file(join(out, "model/tokenizer/merges.txt")).text()).split("\n")[0]).toBe("#version: 0.2");
});

test("a text_encoder/ folder brings its config.json", async () => {
  const out = await buildBrowserKnob({ encoder: join(TINY_MODEL, "text_encoder"), out: join(dir, "folder") });
  expect(readdirSync(join(out, "encoder")).sort()).toEqual(["config.json", "model.safetensors"]);
});

test("bad encoder paths are refused with what to give, and nothing is written", async () => {
  const empty = join(dir, "empty");
  mkdirSync(empty);
  const notWeights = join(dir, "notes.txt");
  writeFileSync(notWeights, "hello");
  const out = join(dir, "never");
  await expect(buildBrowserKnob({ encoder: join(dir, "missing"), out })).rejects.toThrow(
    /no tuned text encoder at .*missing: run `bun run cli train`.*or pass --encoder PATH/,
  );
  await expect(buildBrowserKnob({ encoder: notWeights, out })).rejects.toThrow(
    "notes.txt: expected a .safetensors, .bin, .pt or .pth weights file",
  );
  await expect(buildBrowserKnob({ encoder: empty, out })).rejects.toThrow(
    `${empty} holds no text encoder weights: expected model.safetensors`,
  );
  expect(existsSync(out)).toBe(false);
});
