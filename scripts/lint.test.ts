import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const biome = join(root, "node_modules/.bin/biome");
const scratch = mkdtempSync(join(tmpdir(), "lint-boundaries-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * Lints the fixture as if it were a source file of `pkg`, with the repository's own biome.json, in a scratch copy
 * of the layout (the fixture is outside the tree's lint scope, so the tree itself stays clean).
 */
function lintAs(pkg: string): { code: number; restricted: string[] } {
  const dir = join(scratch, pkg);
  mkdirSync(join(dir, "packages", pkg, "src"), { recursive: true });
  cpSync(join(root, "biome.json"), join(dir, "biome.json"));
  cpSync(join(import.meta.dir, "lint-fixtures/upward-import.ts"), join(dir, "packages", pkg, "src/upward-import.ts"));
  const run = Bun.spawnSync([biome, "lint", "--vcs-enabled=false", "--max-diagnostics=50", "--colors=off", "."], {
    cwd: dir,
  });
  const out = run.stdout.toString() + run.stderr.toString();
  // The first line of each finding names the file, position and rule; the quoted import follows in the frame.
  const restricted = [...out.matchAll(/upward-import\.ts:(\d+):\d+ lint\/style\/noRestrictedImports/g)].map(
    (m) => m[1]!,
  );
  return { code: run.exitCode, restricted };
}

describe("the import-boundary rule (biome.json) keeps webgpu-kernels ← core ← rewards ← cli", () => {
  test("webgpu-kernels may import no other package: core, rewards and the CLI are all refused", () => {
    const r = lintAs("webgpu-kernels");
    expect(r.restricted).toEqual(["3", "4", "5"]);
    expect(r.code).not.toBe(0);
  });

  test("core may not import rewards or the CLI (by package name or by relative path)", () => {
    expect(lintAs("core").restricted).toEqual(["4", "5"]);
  });

  test("rewards may not import the CLI", () => {
    expect(lintAs("rewards").restricted).toEqual(["5"]);
  });

  test("the CLI, at the top, may import every package: the same file lints clean there", () => {
    const r = lintAs("cli");
    expect(r.restricted).toEqual([]);
    expect(r.code).toBe(0);
  });
});
