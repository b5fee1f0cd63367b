/** The ours-vs-PyTorch tables: the ratio column, both sides' threads above the rows, rows matched by name. */
import { expect, test } from "bun:test";
import { lavapipeThreads, type OurThreads } from "../packages/cli/src/bench/threads.ts";
import { modelTable } from "./compare-models.ts";
import { headerLines, percentOf, type TorchEnv } from "./vs-torch.ts";

const torchEnv: TorchEnv = {
  torch: "1.13.0a0",
  blas: "openblas",
  blasPath: "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so",
  intraOpThreads: 2,
  openblasThreads: 2,
  ompWaitPolicy: "PASSIVE",
  cores: 2,
  warning: null,
};
const ours: OurThreads = { adapter: "llvmpipe", threads: 2, source: "cores", cores: 2 };

test("ours / PyTorch is PyTorch's time over ours, in percent; times that are not positive are refused", () => {
  expect(percentOf(20, 10)).toBe("50 %");
  expect(percentOf(10, 20)).toBe("200 %");
  expect(percentOf(1000, 12)).toBe("1.2 %");
  expect(() => percentOf(0, 10)).toThrow("times must be positive");
  expect(() => percentOf(10, Number.NaN)).toThrow("times must be positive");
});

test("lavapipe's threads: LP_NUM_THREADS when set, else one per core; a value that is not a count is refused", () => {
  expect(lavapipeThreads({}, 2)).toEqual({ threads: 2, source: "cores", cores: 2 });
  expect(lavapipeThreads({ LP_NUM_THREADS: "8" }, 2)).toEqual({ threads: 8, source: "LP_NUM_THREADS", cores: 2 });
  expect(() => lavapipeThreads({ LP_NUM_THREADS: "all" }, 2)).toThrow('LP_NUM_THREADS="all" is not a thread count');
});

test("the header states both sides' threads and PyTorch's BLAS, and shouts when the reference BLAS was allowed", () => {
  const [threads, ...rest] = headerLines(ours, torchEnv);
  expect(threads).toContain("lavapipe threads 2 (one per core, LP_NUM_THREADS unset)");
  expect(threads).toContain("openblas (libopenblasp-r0.3.21.so): intra-op threads 2, OpenBLAS threads 2");
  expect(rest).toEqual([]);
  const warned = headerLines(ours, { ...torchEnv, blas: "reference", warning: "PyTorch runs on the REFERENCE BLAS" });
  expect(warned[1]).toBe("**WARNING: PyTorch runs on the REFERENCE BLAS**");
});

test("model rows are matched by model, pass and shape; a row PyTorch lacks shows a dash", () => {
  const row = (pass: string, ms: number) => ({
    model: "unet",
    pass,
    shape: "1×4×16²",
    params: 859.5,
    medianMs: ms,
    samples: [ms],
  });
  const lines = modelTable({
    ours: {
      adapter: "llvmpipe",
      suite: "models",
      threads: ours,
      rows: [
        { ...row("forward", 400), dispatches: 900 },
        { ...row("backward", 900), dispatches: 2000 },
      ],
    },
    torch: { torch: "1.13.0a0", env: torchEnv, rows: [row("forward", 100)] },
  });
  expect(lines[0]).toContain("random weights");
  expect(lines.slice(-2)).toEqual([
    "| unet | forward | 1×4×16² | 859.5M | 400.0 | 100.0 | 25 % | 900 |",
    "| unet | backward | 1×4×16² | 859.5M | 900.0 | – | – | 2000 |",
  ]);
});
