/**
 * Run checkpoints: trainable weights, optimizer moments and step counters, written so that a crash at any
 * moment leaves the last good checkpoint intact. Each file is written atomically (temp + rename) into a new
 * step folder, and only then does `latest.json` (also atomic) point at it; older folders are removed after.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import { readSafetensors, writeSafetensors } from "../io/safetensors.ts";
import type { Module } from "../nn/module.ts";
import type { AdamW } from "../optim/adamw.ts";
import type { EMA } from "./ema.ts";

export interface RunCounters {
  step: number;
  badSteps: number;
}

export interface CheckpointExtras {
  /** The weights' moving average, saved beside them (ema.safetensors). */
  ema?: EMA | null;
  /** How many step folders to keep, the newest; null keeps all (default 2). */
  totalLimit?: number | null;
}

const folderName = (step: number) => `step-${String(step).padStart(6, "0")}`;

/**
 * Saves a checkpoint. A save that fails (a full disk) removes its step folder, so the folder holds only whole
 * checkpoints and `latest.json` still names the previous one.
 */
export async function saveCheckpoint(...args: Parameters<typeof writeCheckpoint>): Promise<string> {
  const [dir, , , , counters] = args;
  try {
    return await writeCheckpoint(...args);
  } catch (e) {
    const latest = join(dir, "latest.json");
    const named = existsSync(latest)
      ? (JSON.parse(await readFile(latest, "utf8")) as { folder?: string }).folder
      : undefined;
    if (named !== folderName(counters.step))
      await rm(join(dir, folderName(counters.step)), { recursive: true, force: true });
    throw e;
  }
}

async function writeCheckpoint(
  dir: string,
  trainable: Module,
  names: string[],
  optimizer: AdamW,
  counters: RunCounters,
  { ema = null, totalLimit = 2 }: CheckpointExtras = {},
): Promise<string> {
  const name = folderName(counters.step);
  const folder = join(dir, name);
  await mkdir(folder, { recursive: true });
  const weights = await trainable.stateDict();
  await writeFileAtomic(
    join(folder, "trainable.safetensors"),
    writeSafetensors(weights, { metadata: { format: "pt" } }),
  );
  const state = await optimizer.state();
  const moments = new Map<string, { data: Float32Array; shape: readonly number[] }>();
  names.forEach((n, i) => {
    const shape = weights.get(n)!.shape;
    moments.set(`exp_avg.${n}`, { data: state.m[i]!, shape });
    moments.set(`exp_avg_sq.${n}`, { data: state.v[i]!, shape });
  });
  await writeFileAtomic(
    join(folder, "optimizer.safetensors"),
    writeSafetensors(moments, { metadata: { step: String(state.step) } }),
  );
  if (ema) {
    const averaged = await ema.state();
    await writeFileAtomic(
      join(folder, "ema.safetensors"),
      writeSafetensors(new Map(names.map((n, i) => [n, { data: averaged[i]!, shape: weights.get(n)!.shape }])), {
        metadata: { decay: String(ema.decay) },
      }),
    );
  }
  await writeFileAtomic(join(folder, "state.json"), new TextEncoder().encode(JSON.stringify(counters)));
  await writeFileAtomic(
    join(dir, "latest.json"),
    new TextEncoder().encode(JSON.stringify({ folder: name, ...counters })),
  );
  const old =
    totalLimit === null
      ? []
      : (await readdir(dir))
          .filter((f) => /^step-\d+$/.test(f) && f !== name)
          .sort()
          .slice(0, -(totalLimit - 1) || undefined);
  for (const f of old) await rm(join(dir, f), { recursive: true, force: true });
  return folder;
}

/**
 * Restores weights, optimizer, moving average and counters from `latest.json`, or from the step folder `from`
 * (a path) when given; null when the run has no checkpoint.
 */
export async function loadCheckpoint(
  dir: string,
  trainable: Module,
  names: string[],
  optimizer: AdamW,
  { ema = null, from }: { ema?: EMA | null; from?: string } = {},
): Promise<RunCounters | null> {
  let folder: string;
  if (from) {
    if (!existsSync(join(from, "state.json")))
      throw new Error(
        `--resume-from: ${from} is not a checkpoint folder (no state.json); give one such as ${join(dir, "step-000100")}`,
      );
    [dir, folder] = [dirname(from), basename(from)];
  } else {
    const latest = join(dir, "latest.json");
    if (!existsSync(latest)) return null;
    ({ folder } = JSON.parse(await readFile(latest, "utf8")) as { folder: string });
  }
  const read = async (f: string) => readSafetensors(new Uint8Array(await readFile(join(dir, folder, f))));
  trainable.loadStateDict((await read("trainable.safetensors")).tensors);
  const opt = await read("optimizer.safetensors");
  const pick = (prefix: string) =>
    names.map((n) => {
      const t = opt.tensors.get(`${prefix}.${n}`);
      if (!t)
        throw new Error(
          `checkpoint ${folder}: optimizer state for "${n}" is missing; the run's trainable parts changed?`,
        );
      return t.data;
    });
  optimizer.loadState({ step: Number(opt.metadata.step), m: pick("exp_avg"), v: pick("exp_avg_sq") });
  if (ema) {
    if (!existsSync(join(dir, folder, "ema.safetensors")))
      throw new Error(
        `checkpoint ${folder} has no moving average (ema.safetensors): the run was made without --ema-decay`,
      );
    const averaged = (await read("ema.safetensors")).tensors;
    ema.loadState(
      names.map((n) => {
        const t = averaged.get(n);
        if (!t)
          throw new Error(
            `checkpoint ${folder}: the moving average of "${n}" is missing; the run's trainable parts changed?`,
          );
        return t.data;
      }),
    );
  }
  return JSON.parse(await readFile(join(dir, folder, "state.json"), "utf8")) as RunCounters;
}
