/**
 * `bun run pack:check`: the packages as a user gets them. Packs every package (scripts/pack.ts), installs the
 * tarballs with npm into an empty folder, type-checks a consumer file against their declarations, and runs
 * scripts/pack-check/generate.mjs (the bundled tiny model, one 6-step image) under Node, Deno and Bun. The three
 * images must agree. Prints one JSON line per runtime and a last line "pack:check: ok".
 *
 * Offline: npm runs with --offline and an unreachable registry. Our packages come from their tarballs; the
 * third-party packages they name are linked from the workspace's node_modules (npm `overrides` with directory
 * specs), so a dependency a package uses but does not declare is still missing there, as it would be for a user.
 */
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packPackages, root, type Packed } from "./pack.ts";

export interface RuntimeResult {
  runtime: string;
  binding: string;
  adapter: string;
  loadSeconds: number;
  sampleSeconds: number;
  shape: number[];
  pixels: number[];
}

/** Largest pixel difference two runtimes may show: same kernels, but Deno compiles WGSL with a different compiler. */
export const PIXEL_TOLERANCE = 2e-3;

function run(cmd: string[], cwd: string, env: Record<string, string> = {}) {
  const p = Bun.spawnSync(cmd, {
    cwd,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? "/tmp", ...env },
  });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

function mustRun(what: string, cmd: string[], cwd: string, env?: Record<string, string>): string {
  const r = run(cmd, cwd, env);
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${cmd.join(" ")}\n${r.out}\n${r.err}`);
  return r.out;
}

/** The consumer folder's manifest: our tarballs as dependencies, every third-party dependency linked from the workspace. */
export function consumerManifest(packed: Packed[]): Record<string, unknown> {
  const ours = new Set(packed.map((p) => p.manifest.name));
  const thirdParty = new Set(
    packed.flatMap((p) => Object.keys(p.manifest.dependencies ?? {})).filter((n) => !ours.has(n)),
  );
  const overrides: Record<string, string> = {};
  for (const name of [...thirdParty].sort()) {
    const dir = join(root, "node_modules", name);
    if (!existsSync(dir))
      throw new Error(`${name} is a dependency of a package but not installed in the workspace: run \`bun install\``);
    overrides[name] = `file:${dir}`;
  }
  return {
    name: "textcraftor-pack-check",
    private: true,
    type: "module",
    dependencies: Object.fromEntries(packed.map((p) => [p.manifest.name, `file:${p.tarball}`])),
    overrides,
  };
}

export function installTarballs(packed: Packed[], dir: string): void {
  writeFileSync(join(dir, "package.json"), `${JSON.stringify(consumerManifest(packed), null, 2)}\n`);
  mustRun(
    "npm install of the tarballs",
    [
      "npm",
      "install",
      "--offline",
      "--ignore-scripts",
      "--no-audit",
      "--no-fund",
      "--no-package-lock",
      "--loglevel=error",
    ],
    dir,
    { npm_config_registry: "http://127.0.0.1:9/" },
  );
}

export function typeCheckConsumer(dir: string): void {
  cpSync(join(root, "scripts/pack-check/types.ts"), join(dir, "types.ts"));
  mustRun(
    "type-checking a consumer against the declarations",
    [
      join(root, "node_modules/.bin/tsc"),
      "--noEmit",
      "--strict",
      "--skipLibCheck",
      "--target",
      "es2022",
      "--module",
      "nodenext",
      "--moduleResolution",
      "nodenext",
      "--typeRoots",
      join(root, "node_modules/@types"),
      "--types",
      "node",
      "types.ts",
    ],
    dir,
  );
}

const lastJson = (out: string): RuntimeResult => {
  const line = out
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .pop();
  if (!line) throw new Error(`no JSON line in output:\n${out}`);
  return JSON.parse(line);
};

export const RUNTIMES: Record<string, (script: string, out: string) => string[]> = {
  node: (script, out) => ["node", script, out],
  deno: (script, out) => [join(root, "node_modules/.bin/deno"), "run", "--unstable-webgpu", "--allow-all", script, out],
  bun: (script, out) => [process.execPath, script, out],
};

export function generateUnder(runtime: string, dir: string, env: Record<string, string> = {}): RuntimeResult {
  cpSync(join(root, "scripts/pack-check/generate.mjs"), join(dir, "generate.mjs"));
  const out = mustRun(
    `generating an image under ${runtime}`,
    RUNTIMES[runtime]!("generate.mjs", `${runtime}.png`),
    dir,
    env,
  );
  return lastJson(out);
}

export const maxDifference = (a: number[], b: number[]) =>
  a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), a.length === b.length ? 0 : Infinity);

export function packCheck(runtimes = Object.keys(RUNTIMES)): RuntimeResult[] {
  const packed = packPackages();
  const dir = mkdtempSync(join(tmpdir(), "textcraftor-pack-check-"));
  try {
    installTarballs(packed, dir);
    typeCheckConsumer(dir);
    const results = runtimes.map((r) => generateUnder(r, dir));
    for (const r of results) {
      const d = maxDifference(r.pixels, results[0]!.pixels);
      if (!(d <= PIXEL_TOLERANCE))
        throw new Error(
          `${r.runtime}'s image differs from ${results[0]!.runtime}'s by ${d} (tolerance ${PIXEL_TOLERANCE})`,
        );
    }
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  for (const { pixels, ...r } of packCheck(process.argv.slice(2).length ? process.argv.slice(2) : undefined)) {
    console.log(JSON.stringify({ ...r, meanPixel: pixels.reduce((s, x) => s + x, 0) / pixels.length }));
  }
  console.log("pack:check: ok");
}
