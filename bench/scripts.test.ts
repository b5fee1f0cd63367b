/** The benchmark scripts refuse bad arguments before they spend minutes (or install anything). */
import { expect, test } from "bun:test";

const bash = (...args: string[]) => {
  const p = Bun.spawnSync(["bash", ...args], { cwd: `${import.meta.dir}/..` });
  return { code: p.exitCode, stderr: p.stderr.toString() };
};

test("train-wall.sh names what is wrong with the revision or the run count", () => {
  expect(bash("bench/train-wall.sh")).toEqual({
    code: 2,
    stderr: expect.stringContaining("usage: bash bench/train-wall.sh REV"),
  });
  expect(bash("bench/train-wall.sh", "no-such-revision-xyz")).toEqual({
    code: 2,
    stderr: expect.stringContaining("'no-such-revision-xyz' is not a commit"),
  });
  expect(bash("bench/train-wall.sh", "HEAD", "--runs", "0")).toEqual({
    code: 2,
    stderr: expect.stringContaining("--runs 0: give a whole number"),
  });
});

test("vs-torch.sh takes one of its three tables and its own options only", () => {
  expect(bash("bench/vs-torch.sh", "everything")).toEqual({
    code: 2,
    stderr: expect.stringContaining("usage: bash bench/vs-torch.sh kernels|models|train"),
  });
  expect(bash("bench/vs-torch.sh", "models", "--fast")).toEqual({
    code: 2,
    stderr: expect.stringContaining("unknown option --fast"),
  });
  expect(bash("bench/vs-torch.sh", "kernels", "--samples", "3")).toEqual({
    code: 2,
    stderr: expect.stringContaining("kernels takes --threads and --allow-reference-blas only"),
  });
});

test("the models table names its models when --only gets another (before opening a device)", () => {
  const p = Bun.spawnSync(["bun", "bench/vs-torch-json.ts", "models", "--only", "clip"], {
    cwd: `${import.meta.dir}/..`,
  });
  expect(p.exitCode).not.toBe(0);
  expect(p.stderr.toString()).toContain("--only clip: use unet or vit");
});
