// Runs each test file in its own `bun test` process, then prints the summed summary. One process per file
// keeps each WebGPU device (and the Dawn FFI state behind it) to one file: a whole-suite process that opened
// dozens of devices was seen to crash Bun itself. Arguments filter the files (substring match).
import { Glob } from "bun";

const root = new URL("..", import.meta.url).pathname;
const filters = process.argv.slice(2);
const files = [...new Glob("**/*.test.ts").scanSync({ cwd: root })]
  .filter((f) => !f.includes("node_modules") && (filters.length === 0 || filters.some((x) => f.includes(x))))
  .sort();
if (!files.length) throw new Error(`no test files match ${filters.join(" ")}`);

let pass = 0, fail = 0;
const failed: string[] = [];
for (const file of files) {
  const p = Bun.spawnSync(["bun", "test", "--timeout", "600000", file], { cwd: root, stdout: "pipe", stderr: "pipe", env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? "/tmp" } });
  const out = p.stdout.toString() + p.stderr.toString();
  process.stdout.write(out);
  const count = (word: string) => [...out.matchAll(new RegExp(`^\\s*(\\d+) ${word}$`, "gm"))].reduce((s, m) => s + Number(m[1]), 0);
  const [p1, f1] = [count("pass"), count("fail")];
  pass += p1;
  // A crash before Bun's summary still counts as a failure of that file.
  const f = f1 + (p.exitCode !== 0 && f1 === 0 ? 1 : 0);
  fail += f;
  if (f) failed.push(file);
}
console.log(`\n${files.length} files${failed.length ? `; failed: ${failed.join(", ")}` : ""}`);
console.log(` ${pass} pass`);
console.log(` ${fail} fail`);
process.exit(fail ? 1 : 0);
