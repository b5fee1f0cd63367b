/** bench/torch_env.py tells OpenBLAS from the reference BLAS by the process's memory map, and refuses the latter. */
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";

// torch_env imports torch only inside prepare(): these checks need a Python, not torch.
const python = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

function py(code: string) {
  const p = Bun.spawnSync([python, "-c", `import json, torch_env\n${code}`], { cwd: import.meta.dir });
  return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

const line = (path: string) => `7f0d0b9bb000-7f0d0b9f1000 r-xp 0001e000 fe:00 5596159                    ${path}`;
const maps = (...paths: string[]) =>
  [line("/usr/lib/x86_64-linux-gnu/libc.so.6"), ...paths.map(line), "7ffd1000-7ffd2000 rw-p 0 0 0 [stack]"].join("\n");

test("the mapped library decides the kind: OpenBLAS through Debian's alternatives, the reference BLAS, MKL, none", () => {
  const cases = {
    openblas: maps(
      "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3",
      "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so",
    ),
    reference: maps("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3", "/usr/lib/x86_64-linux-gnu/lapack/liblapack.so.3"),
    mkl: maps("/opt/intel/lib/libmkl_rt.so.2"),
    none: maps(),
  };
  const r = py(`print(json.dumps({k: torch_env.blas_from_maps(v) for k, v in ${JSON.stringify(cases)}.items()}))`);
  expect(r.stderr).toBe("");
  expect(JSON.parse(r.stdout)).toEqual({
    openblas: ["openblas", "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3"],
    reference: ["reference", "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3"],
    mkl: ["mkl", "/opt/intel/lib/libmkl_rt.so.2"],
    none: [null, null],
  });
});

test("the reference BLAS is refused naming the package to install, unless allowed (then the table is warned)", () => {
  const refused = py(`torch_env.check_blas("reference", False)`);
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toContain("apt-get install libopenblas0-pthread");
  expect(refused.stderr).toContain("--allow-reference-blas");
  expect(py(`torch_env.check_blas(None, False)`).code).not.toBe(0); // nothing identified is no proof of a fast BLAS
  const allowed = py(
    `print(json.dumps([torch_env.check_blas("reference", True), torch_env.check_blas("openblas", False)]))`,
  );
  expect(allowed.code).toBe(0);
  const [warning, none] = JSON.parse(allowed.stdout);
  expect(warning).toContain("REFERENCE BLAS");
  expect(none).toBeNull();
});
