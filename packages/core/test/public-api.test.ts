/**
 * The public API: each package root exports the supported surface, internals only behind `./internal`, and code
 * in one package reaches another only through that package's `exports` map (what a published package allows).
 */
import { describe, expect, test } from "bun:test";
import { Glob } from "bun";
import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import * as core from "@textcraftor/core";
import * as coreInternal from "@textcraftor/core/internal";
import * as kernels from "@textcraftor/webgpu-kernels";
import * as kernelsInternal from "@textcraftor/webgpu-kernels/internal";

const root = resolve(import.meta.dir, "../../..");

describe("@textcraftor/core", () => {
  test("the root exports models, loaders, pipelines, training, the reward interface and tensor/ops/nn", () => {
    const supported = [
      "openDevice",
      "initRuntime",
      "Tensor",
      "noGrad",
      "checkpoint",
      "scope",
      "record",
      "matmul",
      "conv2d",
      "softmax",
      "Module",
      "Linear",
      "AdamW",
      "ClipTokenizer",
      "DDIMScheduler",
      "CLIPTextModel",
      "UNet2DConditionModel",
      "AutoencoderKL",
      "loadStableDiffusion",
      "loadTextEncoder",
      "readWeights",
      "readSafetensors",
      "readTorchCheckpoint",
      "saveDiffusersFolder",
      "textToImage",
      "controlledEmbeddings",
      "evaluateRewards",
      "gridPng",
      "RewardRegistry",
      "combineRewards",
      "train",
      "exportTextEncoder",
    ];
    expect(supported.filter((name) => !(name in core))).toEqual([]);
  });

  test("internals are behind ./internal only", () => {
    const internal = [
      "BufferPool",
      "Storage",
      "classifyAdapter",
      "unpickle",
      "toFloat32",
      "splitSingleFile",
      "unetLayout",
      "guidedNoise",
      "rewardGraph",
      "saveCheckpoint",
      "resumeConflicts",
    ];
    expect(internal.filter((name) => !(name in coreInternal))).toEqual([]);
    expect(Object.keys(coreInternal).filter((name) => name in core)).toEqual([]);
  });
});

describe("@textcraftor/webgpu-kernels", () => {
  test("the root exports the runner and the kernel families; binding workarounds are internal", () => {
    expect(["KernelRunner", "matmulCpu", "conv2dCpu"].filter((name) => !(name in kernels))).toEqual([]);
    expect(Object.keys(kernelsInternal)).toContain("holdEncodedStrings");
    expect(Object.keys(kernelsInternal).filter((name) => name in kernels)).toEqual([]);
  });
});

/** Every import specifier in a source file, static or dynamic. */
const specifiers = (src: string) =>
  [...src.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)"([^"]+)"/g)].map((m) => m[1]!);

function packageOf(file: string): string | null {
  const m = relative(root, file).match(/^packages\/([^/]+)\//);
  return m ? m[1]! : null;
}

const exportsOf = (dir: string): string[] =>
  Object.keys(JSON.parse(readFileSync(join(root, "packages", dir, "package.json"), "utf8")).exports ?? { ".": "" });

/** What an import breaks: a path into another package, or a subpath its exports map does not name. */
export function boundaryViolation(file: string, spec: string): string | null {
  const from = packageOf(file);
  if (spec.startsWith(".")) {
    const to = packageOf(resolve(dirname(file), spec));
    return from && to && to !== from ? `reaches into packages/${to} by path` : null;
  }
  const m = spec.match(/^@textcraftor\/([^/]+)(\/.*)?$/);
  if (!m) return null;
  const sub = `.${m[2] ?? ""}`;
  if (!exportsOf(m[1]!).includes(sub)) return `${sub} is not in @textcraftor/${m[1]}'s exports`;
  if (relative(root, file).startsWith("examples/") && sub !== ".") return "examples use package roots only";
  return null;
}

describe("imports across packages", () => {
  test("the rule flags a path into another package, an unexported subpath and an example using internals", () => {
    const cli = join(root, "packages/cli/src/x.ts");
    expect(boundaryViolation(cli, "../../core/src/tensor/pool.ts")).toContain("packages/core");
    expect(boundaryViolation(cli, "@textcraftor/core/src/index.ts")).toContain("not in @textcraftor/core's exports");
    expect(boundaryViolation(join(root, "examples/x/a.ts"), "@textcraftor/core/internal")).toContain("package roots");
    expect(boundaryViolation(cli, "@textcraftor/core/internal")).toBeNull();
    expect(boundaryViolation(cli, "./report.ts")).toBeNull();
  });

  test("sources, examples, benchmarks and scripts go through exports maps", () => {
    const files = [
      "packages/*/src/**/*.ts",
      "packages/*/recipe/**/*.ts",
      "examples/**/*.ts",
      "bench/**/*.ts",
      "scripts/**/*.ts",
    ]
      .flatMap((pattern) => [...new Glob(pattern).scanSync({ cwd: root, absolute: true })])
      .filter((file) => !file.includes("/lint-fixtures/")); // the linter's deliberately bad imports
    expect(files.length).toBeGreaterThan(50);
    const problems = files.flatMap((file) =>
      specifiers(readFileSync(file, "utf8")).flatMap((spec) => {
        const why = boundaryViolation(file, spec);
        return why ? [`${relative(root, file)}: "${spec}" ${why}`] : [];
      }),
    );
    expect(problems).toEqual([]);
  });
});
