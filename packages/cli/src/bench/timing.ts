/** Wall-clock timing of GPU work: warm up, then the median of several samples, each long enough to measure. */
import { runtime } from "@textcraftor/core";

export interface Timing {
  medianMs: number;
  samples: number[];
  reps: number;
}

async function drain(): Promise<void> {
  const { runner } = runtime();
  runner.flush();
  await runner.device.queue.onSubmittedWorkDone();
}

/**
 * `run` encodes one execution; it is repeated `reps` times per sample so that a sample lasts >= `minSampleMs`.
 * With `minSampleMs` 0 each sample is one run after one warm-up run: what a slow pass (a whole model) can afford.
 */
export async function timeGpu(run: () => void, { samples = 7, minSampleMs = 30 } = {}): Promise<Timing> {
  run();
  await drain(); // first run compiles pipelines
  let reps = 1;
  if (minSampleMs > 0) {
    const t0 = performance.now();
    run();
    await drain();
    const once = Math.max(performance.now() - t0, 0.01);
    reps = Math.max(1, Math.min(200, Math.ceil(minSampleMs / once)));
  }
  const times: number[] = [];
  for (let s = 0; s < samples; s++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) run();
    await drain();
    times.push((performance.now() - t0) / reps);
  }
  const sorted = [...times].sort((a, b) => a - b);
  return { medianMs: sorted[Math.floor(sorted.length / 2)]!, samples: times, reps };
}
