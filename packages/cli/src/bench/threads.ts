/**
 * The threads our side of a benchmark computes on, stated beside PyTorch's: on a CPU adapter lavapipe runs its
 * shaders on LP_NUM_THREADS threads, or one per core when that is unset; a GPU's are not counted.
 */
import { availableParallelism } from "node:os";
import type { Runtime } from "@textcraftor/core";

export interface OurThreads {
  adapter: string;
  /** Threads lavapipe computes on; null on a GPU. */
  threads: number | null;
  source: "LP_NUM_THREADS" | "cores" | "gpu";
  cores: number;
}

/** lavapipe's thread count from the environment; LP_NUM_THREADS that is not a count is refused, as it would be ignored. */
export function lavapipeThreads(env: Record<string, string | undefined>, cores: number): Omit<OurThreads, "adapter"> {
  const set = env.LP_NUM_THREADS;
  if (set === undefined || set === "") return { threads: cores, source: "cores", cores };
  if (!/^\d+$/.test(set))
    throw new Error(`LP_NUM_THREADS="${set}" is not a thread count: set a whole number (e.g. ${cores}) or unset it`);
  return { threads: Number(set), source: "LP_NUM_THREADS", cores };
}

export function ourThreads(rt: Runtime): OurThreads {
  const adapter = rt.gpu.info.adapter.name;
  const cores = availableParallelism();
  if (!rt.gpu.info.isCPU) return { adapter, threads: null, source: "gpu", cores };
  return { adapter, ...lavapipeThreads(process.env, cores) };
}

export function describeThreads(t: OurThreads): string {
  if (t.threads === null) return `ours on ${t.adapter} (GPU)`;
  const why = t.source === "LP_NUM_THREADS" ? "LP_NUM_THREADS" : "one per core, LP_NUM_THREADS unset";
  return `ours on ${t.adapter}: lavapipe threads ${t.threads} (${why}), ${t.cores} cores`;
}
