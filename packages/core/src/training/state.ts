/**
 * Run checkpoints: trainable weights, optimizer moments and step counters, written so that a crash at any
 * moment leaves the last good checkpoint intact. Each file is written atomically (temp + rename) into a new
 * step folder, and only then does `latest.json` (also atomic) point at it; older folders are removed after.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import { readSafetensors, writeSafetensors } from "../io/safetensors.ts";
import type { Module } from "../nn/module.ts";
import type { AdamW } from "../optim/adamw.ts";

export interface RunCounters { step: number; badSteps: number }

const KEEP = 2;

export async function saveCheckpoint(dir: string, trainable: Module, names: string[], optimizer: AdamW, counters: RunCounters): Promise<string> {
  const name = `step-${String(counters.step).padStart(6, "0")}`;
  const folder = join(dir, name);
  await mkdir(folder, { recursive: true });
  const weights = await trainable.stateDict();
  await writeFileAtomic(join(folder, "trainable.safetensors"), writeSafetensors(weights, { metadata: { format: "pt" } }));
  const state = await optimizer.state();
  const moments = new Map<string, { data: Float32Array; shape: readonly number[] }>();
  names.forEach((n, i) => {
    const shape = weights.get(n)!.shape;
    moments.set(`exp_avg.${n}`, { data: state.m[i]!, shape });
    moments.set(`exp_avg_sq.${n}`, { data: state.v[i]!, shape });
  });
  await writeFileAtomic(join(folder, "optimizer.safetensors"), writeSafetensors(moments, { metadata: { step: String(state.step) } }));
  await writeFileAtomic(join(folder, "state.json"), new TextEncoder().encode(JSON.stringify(counters)));
  await writeFileAtomic(join(dir, "latest.json"), new TextEncoder().encode(JSON.stringify({ folder: name, ...counters })));
  const old = (await readdir(dir)).filter((f) => /^step-\d+$/.test(f)).sort().slice(0, -KEEP);
  for (const f of old) await rm(join(dir, f), { recursive: true, force: true });
  return folder;
}

/** Restores weights, optimizer and counters from `latest.json`; null when the run has no checkpoint. */
export async function loadCheckpoint(dir: string, trainable: Module, names: string[], optimizer: AdamW): Promise<RunCounters | null> {
  const latest = join(dir, "latest.json");
  if (!existsSync(latest)) return null;
  const { folder } = JSON.parse(await readFile(latest, "utf8")) as { folder: string };
  const read = async (f: string) => readSafetensors(new Uint8Array(await readFile(join(dir, folder, f))));
  trainable.loadStateDict((await read("trainable.safetensors")).tensors);
  const opt = await read("optimizer.safetensors");
  const pick = (prefix: string) => names.map((n) => {
    const t = opt.tensors.get(`${prefix}.${n}`);
    if (!t) throw new Error(`checkpoint ${folder}: optimizer state for "${n}" is missing; the run's trainable parts changed?`);
    return t.data;
  });
  optimizer.loadState({ step: Number(opt.metadata.step), m: pick("exp_avg"), v: pick("exp_avg_sq") });
  return JSON.parse(await readFile(join(dir, folder, "state.json"), "utf8")) as RunCounters;
}
