/**
 * Publishable packages: the manifests as published, and `bun run pack:check` end to end (pack, install the
 * tarballs offline into an empty folder, type-check a consumer, one image under Node, Deno and Bun).
 */
import { describe, expect, test } from "bun:test";
import { declarationSpecifiers, publishedManifest, workspacePackages, type PackageJson } from "./pack.ts";
import { consumerManifest, maxDifference, packCheck, PIXEL_TOLERANCE } from "./pack-check.ts";

describe("published manifests", () => {
  const versions = new Map([["@textcraftor/core", "0.3.1"]]);
  const workspace: PackageJson = {
    name: "@textcraftor/x",
    version: "0.3.1",
    exports: { ".": "./src/index.ts" },
    files: ["dist"],
    dependencies: { "@textcraftor/core": "workspace:*", "fast-png": "8.0.0" },
    devDependencies: { "fast-check": "4" },
    scripts: { recipe: "bun r.ts" },
    publishConfig: { exports: { ".": { types: "./dist/index.d.ts", import: "./dist/index.js" } } },
  };

  test("exports come from publishConfig, workspace dependencies name the version, development fields go", () => {
    const m = publishedManifest(workspace, versions);
    expect(m.exports).toEqual({ ".": { types: "./dist/index.d.ts", import: "./dist/index.js" } });
    expect(m.dependencies).toEqual({ "@textcraftor/core": "0.3.1", "fast-png": "8.0.0" });
    expect(m).not.toHaveProperty("devDependencies");
    expect(m).not.toHaveProperty("scripts");
    expect(m).not.toHaveProperty("publishConfig");
  });

  test("a workspace dependency on a package that is not in the workspace is named", () => {
    expect(() =>
      publishedManifest({ ...workspace, dependencies: { "@textcraftor/gone": "workspace:*" } }, versions),
    ).toThrow("@textcraftor/x depends on @textcraftor/gone (workspace:*), which is not a package of this workspace");
  });

  test("every package publishes a licence, a files list and dist entry points for each of its exports", () => {
    const packages = workspacePackages();
    expect(packages.map((p) => p.dir)).toEqual(["cli", "core", "rewards", "tiny-model", "webgpu-kernels"]);
    for (const { manifest } of packages) {
      expect(manifest.license).toBe("Apache-2.0");
      expect(manifest.files).toContain("dist");
      const published = publishedManifest(
        manifest,
        new Map(packages.map((p) => [p.manifest.name, p.manifest.version])),
      );
      expect(JSON.stringify(published)).not.toContain("workspace:");
      expect(JSON.stringify([published.exports ?? {}, published.bin ?? {}])).not.toContain("./src/");
      for (const subpath of Object.keys((manifest.exports as object | undefined) ?? {})) {
        const name = subpath === "." ? "index" : subpath.slice(2);
        expect((published.exports as Record<string, unknown>)[subpath]).toEqual({
          types: `./dist/${name}.d.ts`,
          import: `./dist/${name}.js`,
        });
      }
    }
  });

  test("declarations import their neighbours as .js", () => {
    expect(
      declarationSpecifiers(
        `export * from "./a/index.ts";\nimport type { T } from '../b.ts';\ntype U = import("./c.ts").U;\nimport "fast-png";`,
      ),
    ).toBe(
      `export * from "./a/index.js";\nimport type { T } from '../b.js';\ntype U = import("./c.js").U;\nimport "fast-png";`,
    );
  });
});

describe("pack:check", () => {
  test("the consumer installs our tarballs and links every third-party dependency, never the registry", () => {
    const manifest = consumerManifest([
      {
        dir: "core",
        tarball: "/p/core.tgz",
        manifest: {
          name: "@textcraftor/core",
          version: "1",
          dependencies: { "@textcraftor/webgpu-kernels": "1", "fast-png": "8.0.0" },
        },
      },
      { dir: "webgpu-kernels", tarball: "/p/k.tgz", manifest: { name: "@textcraftor/webgpu-kernels", version: "1" } },
    ]) as { dependencies: Record<string, string>; overrides: Record<string, string> };
    expect(manifest.dependencies).toEqual({
      "@textcraftor/core": "file:/p/core.tgz",
      "@textcraftor/webgpu-kernels": "file:/p/k.tgz",
    });
    expect(Object.keys(manifest.overrides)).toEqual(["fast-png"]);
    expect(manifest.overrides["fast-png"]).toMatch(/^file:.*node_modules\/fast-png$/);
  });

  test("the packed packages generate the same image under Node, Deno and Bun", () => {
    const results = packCheck();
    expect(results.map((r) => r.runtime)).toEqual(["node", "deno", "bun"]);
    for (const r of results) {
      expect(r.shape).toEqual([1, 3, 32, 32]);
      expect(maxDifference(r.pixels, results[2]!.pixels)).toBeLessThanOrEqual(PIXEL_TOLERANCE);
      // Not a blank or saturated image: the model drew something.
      const mean = r.pixels.reduce((s, x) => s + x, 0) / r.pixels.length;
      expect(mean).toBeGreaterThan(0.05);
      expect(mean).toBeLessThan(0.95);
    }
  });
});
