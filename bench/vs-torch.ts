// What every ours-vs-PyTorch table states above its rows (both sides' threads, PyTorch's BLAS) and its ratio column.
import { describeThreads, type OurThreads } from "../packages/cli/src/bench/threads.ts";

/** The PyTorch side's environment, as bench/torch_env.py's `prepare` reports it. */
export interface TorchEnv {
  torch: string;
  blas: string | null;
  blasPath: string | null;
  intraOpThreads: number;
  openblasThreads: number | null;
  ompWaitPolicy: string;
  cores: number;
  warning: string | null;
}

export function describeTorch(env: TorchEnv): string {
  const blas = env.blasPath ? `${env.blas} (${env.blasPath.split("/").pop()})` : "no BLAS found";
  const openblas = env.openblasThreads === null ? "" : `, OpenBLAS threads ${env.openblasThreads}`;
  return `PyTorch ${env.torch} on ${blas}: intra-op threads ${env.intraOpThreads}${openblas}, OMP_WAIT_POLICY ${env.ompWaitPolicy}, ${env.cores} cores`;
}

/** Both sides' threads, and a loud line when PyTorch was allowed to run on the reference BLAS. */
export function headerLines(ours: OurThreads | undefined, torch: TorchEnv | undefined): string[] {
  const lines = [
    `Threads: ${ours ? describeThreads(ours) : "ours not stated"}; ${torch ? describeTorch(torch) : "PyTorch's not stated"}`,
  ];
  if (torch?.warning) lines.push(`**WARNING: ${torch.warning}**`);
  return lines;
}

/** Our speed as a percentage of PyTorch's: its time over ours (100 % = as fast, 50 % = twice its time). */
export function percentOf(oursMs: number, torchMs: number): string {
  if (!(oursMs > 0) || !(torchMs > 0)) throw new Error(`times must be positive, got ours ${oursMs}, torch ${torchMs}`);
  const p = (100 * torchMs) / oursMs;
  return `${p < 10 ? p.toFixed(1) : p.toFixed(0)} %`;
}
