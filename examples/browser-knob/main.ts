/**
 * The page: loads the bundled tiny model from `model/` and a tuned text encoder from `encoder/` (both served
 * beside it; `bun run example:browser-knob` lays them out), then renders the frame at the slider's w as it moves
 * and the strip w = 0 … 1 once per prompt and encoder. Frames render one at a time; moves that arrive meanwhile
 * collapse into the latest. `window.knob` lets a test wait for the page and read what it drew.
 */
import {
  fetchModelFiles,
  loadStableDiffusion,
  loadTextEncoder,
  openDevice,
  useDevice,
  type CLIPTextModel,
  type ImageData3,
} from "@textcraftor/core";
import { knobFrame, TINY_KNOB, toRgba } from "./knob.ts";

const STRIP = [0, 0.25, 0.5, 0.75, 1];
const element = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const slider = element<HTMLInputElement>("w");
const promptInput = element<HTMLInputElement>("prompt");
const status = element<HTMLParagraphElement>("status");

/** The chain every render joins, so that frames never overlap on the device. */
let queue: Promise<void> = Promise.resolve();
let pendingW: number | null = null;
const knob = {
  ready: start(),
  /** Resolves once every render asked for so far is drawn. */
  idle: () => queue,
  /** The frame last drawn on the main canvas: its w and [3, H, W] floats in [0, 1]. */
  last: null as { w: number; data: Float32Array } | null,
  adapter: "",
};
(globalThis as unknown as { knob: typeof knob }).knob = knob;

function draw(canvas: HTMLCanvasElement, frame: ImageData3) {
  canvas.width = frame.width;
  canvas.height = frame.height;
  canvas.getContext("2d")!.putImageData(new ImageData(toRgba(frame), frame.width, frame.height), 0, 0);
}

function fail(e: unknown) {
  status.className = "error";
  status.textContent = `error: ${(e as Error).message}`;
  console.error(e);
}

function enqueue(work: () => Promise<void>) {
  queue = queue.then(work).catch(fail);
}

async function start() {
  try {
    // Without a GPU, Chromium's WebGPU is SwiftShader, a fallback adapter the core refuses unless asked. Its shader
    // compiler takes minutes over the first frame's kernels with either kernel family; the tiled one compiles faster.
    const gpu = await openDevice({ allowFallback: true });
    useDevice(gpu);
    knob.adapter = `${gpu.info.adapter.name} (${gpu.info.kind})`;
    status.textContent = `loading the model on ${knob.adapter}…`;
    const sd = await loadStableDiffusion(fetchModelFiles("model"));
    let tuned: CLIPTextModel = await loadTextEncoder(fetchModelFiles("encoder"), sd.source.configs.textEncoder);

    const frame = async (w: number) => {
      const started = performance.now();
      const image = await knobFrame(sd, tuned, promptInput.value, w, TINY_KNOB);
      const ms = performance.now() - started;
      return { image, ms };
    };
    const renderStrip = async () => {
      const figures = [];
      let total = 0;
      for (const w of STRIP) {
        const { image, ms } = await frame(w);
        total += ms;
        const canvas = document.createElement("canvas");
        draw(canvas, image);
        const figure = document.createElement("figure");
        figure.append(canvas, Object.assign(document.createElement("figcaption"), { textContent: `w = ${w}` }));
        figures.push(figure);
      }
      element("strip").replaceChildren(...figures);
      status.textContent = `strip: ${STRIP.length} frames in ${total.toFixed(0)} ms on ${knob.adapter}`;
    };
    const renderCurrent = async () => {
      const w = pendingW!;
      pendingW = null;
      const { image, ms } = await frame(w);
      draw(element<HTMLCanvasElement>("frame"), image);
      knob.last = { w, data: image.data };
      status.textContent = `w = ${w.toFixed(2)}: ${ms.toFixed(0)} ms for ${TINY_KNOB.steps} steps on ${knob.adapter}`;
    };
    const show = (w: number) => {
      element("w-value").textContent = w.toFixed(2);
      // A frame already waiting takes the newest w; only a new request queues another.
      if (pendingW === null) enqueue(renderCurrent);
      pendingW = w;
    };

    slider.addEventListener("input", () => show(Number(slider.value)));
    promptInput.addEventListener("change", () => {
      enqueue(renderStrip);
      show(Number(slider.value));
    });
    element<HTMLInputElement>("encoder-file").addEventListener("change", (event) => {
      const file = (event.target as HTMLInputElement).files?.[0];
      if (!file) return;
      enqueue(async () => {
        const next = await loadTextEncoder(file, sd.source.configs.textEncoder);
        tuned.dispose();
        tuned = next;
      });
      enqueue(renderStrip);
      show(Number(slider.value));
    });
    slider.disabled = false;
    show(Number(slider.value));
    enqueue(renderStrip);
    await queue;
  } catch (e) {
    fail(e);
    throw e;
  }
}
