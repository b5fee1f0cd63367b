/**
 * The quality-knob page in headless Chromium: built by the repo's command with a tuned encoder, served, loaded on
 * the browser's WebGPU (SwiftShader where there is no GPU), its slider set at two weights. What it draws must match
 * the frames Bun makes with the same code on its own device (lavapipe here), within the bound measured below.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  cloneTextEncoder,
  exportTextEncoder,
  initRuntime,
  loadStableDiffusion,
  type CLIPTextModel,
  type ImageData3,
  type StableDiffusion,
} from "@textcraftor/core";
import { TINY_MODEL } from "@textcraftor/tiny-model";
import { buildBrowserKnob } from "./build.ts";
import { openPage, type Page } from "./chromium.ts";
import { knobFrame, TINY_KNOB, toRgba } from "./knob.ts";
import { serveFolder } from "./serve.ts";

const PROMPT = "red apple";
const SLIDER = [0.5, 1.5];
/**
 * SwiftShader and lavapipe sum in different orders (and Chromium runs the tiled kernel family, Bun on lavapipe the
 * CPU-driver one), so the last bits differ: 3.5e-6 at most was measured, and no 8-bit level. The bounds leave room
 * for other drivers; one level allows a value that lies on a rounding boundary.
 */
const MAX_FLOAT_DIFF = 1e-4;
const MAX_BYTE_DIFF = 1;

const dir = mkdtempSync(join(tmpdir(), "tc-browser-knob-"));
let sd: StableDiffusion;
let tuned: CLIPTextModel;
let server: ReturnType<typeof Bun.serve>;
let page: Page;
/** Bun's frames at the strip's ends and the slider's weights, made while Chromium compiles its kernels. */
let references: Promise<Map<number, ImageData3>>;

/** A stand-in for a tuned encoder (any weights that differ from the base): the final layer norm's gain doubled. */
async function shiftedEncoder(base: CLIPTextModel) {
  const encoder = await cloneTextEncoder(base);
  const weights = await encoder.stateDict();
  const gain = weights.get("text_model.final_layer_norm.weight")!.data;
  gain.forEach((g, i) => {
    gain[i] = 2 * g;
  });
  encoder.loadStateDict(weights);
  return encoder;
}

beforeAll(async () => {
  await initRuntime();
  sd = await loadStableDiffusion(TINY_MODEL);
  tuned = await shiftedEncoder(sd.textEncoder);
  const encoder = await exportTextEncoder(tuned, sd.source.configs.textEncoder, join(dir, "text_encoder"));
  server = serveFolder(await buildBrowserKnob({ encoder, out: join(dir, "dist") }));
  page = await openPage(server.url.href);
  references = (async () => {
    const frames = new Map<number, ImageData3>();
    for (const w of [0, 1, ...SLIDER]) frames.set(w, await knobFrame(sd, tuned, PROMPT, w, TINY_KNOB));
    return frames;
  })();
  await page.evaluate(
    "new Promise((ok) => { const t = setInterval(() => window.knob && (clearInterval(t), ok()), 50); })",
  );
});

afterAll(async () => {
  await page?.close();
  server?.stop(true);
  tuned?.dispose();
  sd?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const failure = async () =>
  `${await page.evaluate('document.getElementById("status").textContent')}\n${page.log.join("\n")}`;

interface Drawn {
  w: number;
  rgba: number[];
  data: number[];
  status: string;
}

const READ = `const read = (c) => Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data);`;

function compare(drawn: Drawn, w: number, reference: { data: Float32Array }) {
  const expected = toRgba({ data: reference.data, channels: 3, height: 32, width: 32 });
  const floatDiff = Math.max(...drawn.data.map((v, i) => Math.abs(v - reference.data[i]!)));
  const byteDiff = Math.max(...drawn.rgba.map((v, i) => Math.abs(v - expected[i]!)));
  console.log(`w = ${w}: largest difference ${floatDiff.toExponential(2)} (floats), ${byteDiff} (8-bit levels)`);
  expect(drawn.w).toBe(w);
  expect(floatDiff).toBeLessThanOrEqual(MAX_FLOAT_DIFF);
  expect(byteDiff).toBeLessThanOrEqual(MAX_BYTE_DIFF);
}

test("the page loads the model and the tuned encoder and draws the strip w = 0 … 1", async () => {
  const ready = await page.evaluate<boolean>("knob.ready.then(() => knob.idle()).then(() => true)", 590_000);
  expect(ready).toBe(true);
  const reference = await references;
  const strip = await page.evaluate<number[][]>(
    `(() => { ${READ} return [...document.querySelectorAll("#strip canvas")].map(read); })()`,
  );
  expect(strip.length, await failure()).toBe(5);
  console.log(`adapter: ${await page.evaluate("knob.adapter")}`);
  // The strip's ends are the base model (w = 0) and the tuned encoder (w = 1), as Bun makes them.
  for (const [index, w] of [
    [0, 0],
    [4, 1],
  ] as const) {
    const expected = toRgba(reference.get(w)!);
    const byteDiff = Math.max(...strip[index]!.map((v, i) => Math.abs(v - expected[i]!)));
    expect(byteDiff, `strip frame w = ${w}`).toBeLessThanOrEqual(MAX_BYTE_DIFF);
  }
});

test("the slider re-renders the frame: at w = 0.5 and 1.5 it matches Bun's", async () => {
  const frames: Drawn[] = [];
  for (const w of SLIDER) {
    const drawn = await page.evaluate<Drawn | null>(
      `(async () => {
        ${READ}
        const slider = document.getElementById("w");
        slider.value = "${w}";
        slider.dispatchEvent(new Event("input"));
        await knob.idle();
        const status = document.getElementById("status").textContent;
        return knob.last && { w: knob.last.w, rgba: read(document.getElementById("frame")), data: Array.from(knob.last.data), status };
      })()`,
      300_000,
    );
    expect(drawn, await failure()).not.toBeNull();
    compare(drawn!, w, (await references).get(w)!);
    expect(drawn!.status).toMatch(new RegExp(`^w = ${w.toFixed(2)}: \\d+ ms for ${TINY_KNOB.steps} steps on `));
    frames.push(drawn!);
  }
  // The two weights give clearly different pictures, so the bound above can tell frames apart.
  const apart = Math.max(...frames[0]!.rgba.map((v, i) => Math.abs(v - frames[1]!.rgba[i]!)));
  expect(apart).toBeGreaterThan(20 * MAX_BYTE_DIFF);
});
