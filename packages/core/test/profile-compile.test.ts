import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// A child process, since the profile is written when the process exits.
test("TEXTCRAFTOR_PROFILE_COMPILE writes every pipeline the process created, with its WGSL, at exit", () => {
  const dir = mkdtempSync(join(tmpdir(), "profile-compile-"));
  try {
    const file = join(dir, "pipelines.json");
    const script = `import * as T from ${JSON.stringify(join(import.meta.dir, "../src/index.ts"))};
      await T.initRuntime();
      const x = T.Tensor.from([1, 2, 3]);
      console.log((await T.exp(x).toArray()).length);`;
    const p = Bun.spawnSync(["bun", "-e", script], {
      env: {
        ...process.env,
        XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? "/tmp",
        TEXTCRAFTOR_PROFILE_COMPILE: file,
      },
    });
    expect(p.exitCode).toBe(0);
    expect(p.stderr.toString()).toContain(`written to ${file}`);
    const pipelines: { key: string; code: string; createSeconds: number }[] = JSON.parse(readFileSync(file, "utf8"));
    const exp = pipelines.find((q) => q.key === 'unary:{"op":"exp"}');
    expect(exp?.code).toContain("exp(x)");
    expect(exp?.createSeconds).toBeGreaterThan(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
