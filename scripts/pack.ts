/**
 * `bun run pack`: the publishable tarballs of every package, in build/packs/.
 *
 * One compiler run (tsconfig.build.json) emits every package's JavaScript and declarations. Each package is then
 * staged as it will be published: the paths its `files` names (`dist` is the compiler's output), the licence, and
 * a package.json whose `exports` and `bin` come from its `publishConfig` (pnpm's convention; npm and Bun would
 * publish the workspace's TypeScript entry points) and whose `workspace:*` dependencies name the exact version.
 * npm packs the staged folder. Publish a tarball with `npm publish build/packs/<file>.tgz`.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const root = new URL("..", import.meta.url).pathname;
const build = join(root, "build");

export interface PackageJson {
  name: string;
  version: string;
  private?: boolean;
  files?: string[];
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  scripts?: Record<string, string>;
  publishConfig?: Record<string, unknown>;
  [field: string]: unknown;
}

export interface Packed {
  dir: string;
  manifest: PackageJson;
  tarball: string;
}

function run(cmd: string[], cwd = root): string {
  const p = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  const out = p.stdout.toString() + p.stderr.toString();
  if (p.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (exit ${p.exitCode}):\n${out}`);
  return out;
}

const readJson = (file: string) => JSON.parse(readFileSync(file, "utf8"));

export function workspacePackages(): { dir: string; manifest: PackageJson }[] {
  return readdirSync(join(root, "packages"))
    .sort()
    .filter((dir) => existsSync(join(root, "packages", dir, "package.json")))
    .map((dir) => ({ dir, manifest: readJson(join(root, "packages", dir, "package.json")) as PackageJson }))
    .filter(({ manifest }) => !manifest.private);
}

/**
 * The manifest as published: `publishConfig` fields replace the workspace's, development-only fields go, and
 * each `workspace:` dependency becomes the version that workspace package has now.
 */
export function publishedManifest(m: PackageJson, versions: ReadonlyMap<string, string>): PackageJson {
  const { publishConfig = {}, devDependencies: _dev, scripts: _scripts, ...rest } = m;
  const dependencies = Object.fromEntries(
    Object.entries(m.dependencies ?? {}).map(([name, spec]) => {
      if (!spec.startsWith("workspace:")) return [name, spec];
      const version = versions.get(name);
      if (!version) throw new Error(`${m.name} depends on ${name} (${spec}), which is not a package of this workspace`);
      return [name, version];
    }),
  );
  return { ...rest, ...publishConfig, ...(m.dependencies ? { dependencies } : {}) };
}

/** Relative `.ts` specifiers in emitted declarations, as `.js`: what a consumer's resolver finds next to them. */
export const declarationSpecifiers = (dts: string) =>
  dts.replace(/((?:from|import)\s*\(?\s*["'])(\.\.?\/[^"']+)\.ts(["'])/g, "$1$2.js$3");

function rewriteDeclarations(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".d.ts")) continue;
    const file = join(entry.parentPath, entry.name);
    writeFileSync(file, declarationSpecifiers(readFileSync(file, "utf8")));
  }
}

export function packPackages(): Packed[] {
  rmSync(build, { recursive: true, force: true });
  run([process.execPath, "x", "tsc", "-p", "tsconfig.build.json"]);
  rewriteDeclarations(join(build, "tsc"));
  const packages = workspacePackages();
  const versions = new Map(packages.map(({ manifest }) => [manifest.name, manifest.version]));
  mkdirSync(join(build, "packs"), { recursive: true });
  return packages.map(({ dir, manifest }) => {
    const source = join(root, "packages", dir),
      stage = join(build, "stage", dir);
    if (!manifest.files?.length)
      throw new Error(`packages/${dir}/package.json has no "files" list: name what the package publishes`);
    for (const path of manifest.files) {
      const from = path === "dist" ? join(build, "tsc", dir, "src") : join(source, path);
      if (!existsSync(from)) throw new Error(`packages/${dir}: "files" names ${path}, which does not exist`);
      cpSync(from, join(stage, path), { recursive: true });
    }
    cpSync(join(root, "LICENSE"), join(stage, "LICENSE"));
    writeFileSync(join(stage, "package.json"), `${JSON.stringify(publishedManifest(manifest, versions), null, 2)}\n`);
    const out = run(["npm", "pack", "--json", "--ignore-scripts", "--pack-destination", join(build, "packs"), stage]);
    const [{ filename }] = JSON.parse(out.slice(out.indexOf("["))) as { filename: string }[];
    return { dir, manifest, tarball: join(build, "packs", filename) };
  });
}

if (import.meta.main) {
  for (const p of packPackages()) console.log(p.tarball.slice(root.length));
}
