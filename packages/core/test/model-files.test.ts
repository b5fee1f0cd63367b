/**
 * Loading without a file system (what a browser page does): a diffusers folder served over HTTP and read with
 * fetch, and weights files handed over as bytes, give the same weights and tokens as loading from disk.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import {
  ClipTokenizer,
  clipMergesText,
  fetchModelFiles,
  initRuntime,
  loadStableDiffusion,
  loadTextEncoder,
  type Module,
  type StableDiffusion,
} from "../src/index.ts";
import fixture from "./fixtures/tokenizer.json";

/** The bundled model's folder, by path: core's tests may not import the tiny-model package, which sits above core. */
const TINY_MODEL = join(import.meta.dir, "../../tiny-model/sd");

let merges: string;
/** The tiny model's folder, plus tokenizer/merges.txt, and /broken/ answering every request with HTTP 500. */
let server: ReturnType<typeof Bun.serve>;
let fromDisk: StableDiffusion;
beforeAll(async () => {
  await initRuntime();
  merges = await clipMergesText();
  server = Bun.serve({
    port: 0,
    async fetch(request) {
      const path = decodeURIComponent(new URL(request.url).pathname);
      if (path.startsWith("/broken/")) return new Response("no", { status: 500, statusText: "Internal Server Error" });
      if (path === "/sd/tokenizer/merges.txt") return new Response(merges);
      const file = Bun.file(join(TINY_MODEL, path.replace(/^\/sd\//, "")));
      return path.startsWith("/sd/") && (await file.exists()) ? new Response(file) : new Response("", { status: 404 });
    },
  });
  fromDisk = await loadStableDiffusion(TINY_MODEL);
});
afterAll(() => {
  server.stop(true);
  fromDisk.dispose();
});

const url = (path: string) => new URL(path, server.url).href;

async function expectSameWeights(a: Module, b: Module) {
  const [wa, wb] = [await a.stateDict(), await b.stateDict()];
  expect([...wa.keys()].sort()).toEqual([...wb.keys()].sort());
  for (const [name, t] of wa) expect(wb.get(name)!.data, name).toEqual(t.data);
}

describe("a diffusers folder read with fetch", () => {
  test("loads the same weights as the folder on disk, and its tokenizer from merges.txt", async () => {
    const served = await loadStableDiffusion(fetchModelFiles(url("/sd")));
    expect(served.source.path).toBe(url("/sd"));
    await expectSameWeights(served.textEncoder, fromDisk.textEncoder);
    await expectSameWeights(served.unet, fromDisk.unet);
    await expectSameWeights(served.vae, fromDisk.vae);
    expect(served.schedulerConfig).toEqual(fromDisk.schedulerConfig);
    // Its own tokenizer, not the package's shared one.
    expect(served.tokenizer).not.toBe(fromDisk.tokenizer);
    for (const prompt of ["red apple", "a photo of a cat", "don't 🙂 stop"])
      expect(served.tokenizer.call(prompt)).toEqual(fromDisk.tokenizer.call(prompt));
    served.dispose();
  });

  test("a folder without a component's config is refused naming the file", async () => {
    await expect(loadStableDiffusion(fetchModelFiles(url("/nothing/")))).rejects.toThrow(
      `${url("/nothing")} is not a diffusers Stable Diffusion folder: text_encoder/config.json is missing`,
    );
  });

  test("a server error names the URL and the status", async () => {
    await expect(loadStableDiffusion(fetchModelFiles(url("/broken")))).rejects.toThrow(
      `cannot fetch ${url("/broken/text_encoder/config.json")}: HTTP 500 Internal Server Error`,
    );
  });

  test("paths on disk do not mix with served files", async () => {
    await expect(
      loadStableDiffusion(fetchModelFiles(url("/sd")), { textEncoderPath: "runs/x/text_encoder" }),
    ).rejects.toThrow(/load a tuned text encoder with loadTextEncoder/);
  });
});

describe("a text encoder as bytes or served files", () => {
  const file = join(TINY_MODEL, "text_encoder/model.safetensors");
  const config = () => fromDisk.source.configs.textEncoder;

  test("Uint8Array, ArrayBuffer and Blob give the weights the path gives", async () => {
    const bytes = await Bun.file(file).bytes();
    for (const source of [bytes, bytes.slice().buffer, new Blob([bytes])]) {
      const encoder = await loadTextEncoder(source, config());
      await expectSameWeights(encoder, fromDisk.textEncoder);
      encoder.dispose();
    }
  });

  test("a text_encoder/ folder served over HTTP reads its own config", async () => {
    const encoder = await loadTextEncoder(fetchModelFiles(url("/sd/text_encoder")), { bogus: "config" });
    await expectSameWeights(encoder, fromDisk.textEncoder);
    encoder.dispose();
  });

  test("bytes that are no weights file get an error saying what was expected", async () => {
    await expect(loadTextEncoder(new TextEncoder().encode("<html>not found</html>"), config())).rejects.toThrow(
      /text encoder weights: .*expected a \.safetensors file or a PyTorch zip checkpoint/,
    );
  });

  test("a served folder without weights says which files it looked for", async () => {
    await expect(loadTextEncoder(fetchModelFiles(url("/sd/scheduler")), config())).rejects.toThrow(
      `no weights in ${url("/sd/scheduler")}: expected model.safetensors or pytorch_model.safetensors or .bin`,
    );
  });
});

test("the tokenizer built from clipMergesText() matches the Python reference", () => {
  expect(merges.split("\n")[0]).toBe("#version: 0.2");
  const tokenizer = ClipTokenizer.fromMerges(merges);
  for (const c of fixture.cases) expect(tokenizer.call(c.text)).toEqual([c.inputIds]);
});
