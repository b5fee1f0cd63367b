// Runs each test file in its own `bun test` process, two at a time, then prints the summed summary.
// One process per file keeps each WebGPU device (and the Dawn FFI state behind it) to one file: a
// whole-suite process that opened dozens of devices was seen to crash Bun itself. Two at a time because on a
// CPU driver much of the time is single-threaded shader compilation. Arguments filter the files: a substring
// keeps the files whose path contains it, and "!substring" drops them.
//
// Some files run a second time under another runtime configuration (VARIANTS): the model goldens with a tiny
// storage-binding limit, so that every op they use is checked on tensors bound in windows.
import { Glob } from "bun";

const root = new URL("..", import.meta.url).pathname;
const args = process.argv.slice(2);
const keep = args.filter((a) => !a.startsWith("!")),
  drop = args.filter((a) => a.startsWith("!")).map((a) => a.slice(1));
const files = [...new Glob("**/*.test.ts").scanSync({ cwd: root })]
  .filter(
    (f) =>
      !f.includes("node_modules") &&
      (keep.length === 0 || keep.some((x) => f.includes(x))) &&
      !drop.some((x) => f.includes(x)),
  )
  .sort();
if (!files.length) throw new Error(`no test files match ${args.join(" ")}`);

const VARIANTS = [
  {
    name: "64 KiB binding limit",
    env: { TEXTCRAFTOR_MAX_BINDING_BYTES: String(64 * 1024) },
    files: ["packages/core/test/clip.test.ts", "packages/core/test/unet.test.ts", "packages/core/test/vae.test.ts"],
  },
  // The step's 6.3 MB token table in 7 windows: at 64 KiB it would need more bindings than a kernel may have.
  {
    name: "1 MiB binding limit",
    env: { TEXTCRAFTOR_MAX_BINDING_BYTES: String(2 ** 20) },
    files: ["packages/core/test/trainer-golden.test.ts"],
  },
];
const runs = [
  ...files.map((file) => ({ file, env: {} as Record<string, string>, label: file })),
  ...VARIANTS.flatMap((v) =>
    v.files.filter((f) => files.includes(f)).map((file) => ({ file, env: v.env, label: `${file} (${v.name})` })),
  ),
];

const count = (out: string, word: string) =>
  [...out.matchAll(new RegExp(`^\\s*(\\d+) ${word}$`, "gm"))].reduce((s, m) => s + Number(m[1]), 0);

async function runFile({ file, env, label }: (typeof runs)[number]): Promise<{ pass: number; fail: number }> {
  const p = Bun.spawn(["bun", "test", "--timeout", "600000", file], {
    cwd: root,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? "/tmp", ...env },
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  const out = stdout + stderr;
  process.stdout.write(label === file ? out : out.replace(`${file}:`, `${label}:`));
  const fail = count(out, "fail");
  // A crash before Bun's summary still counts as a failure of that file.
  return { pass: count(out, "pass"), fail: fail + (code !== 0 && fail === 0 ? 1 : 0) };
}

let pass = 0,
  fail = 0,
  next = 0;
const failed: string[] = [];
await Promise.all(
  [0, 1].map(async () => {
    while (next < runs.length) {
      const run = runs[next++]!;
      const r = await runFile(run);
      pass += r.pass;
      fail += r.fail;
      if (r.fail) failed.push(run.label);
    }
  }),
);
console.log(`\n${runs.length} test file runs${failed.length ? `; failed: ${failed.join(", ")}` : ""}`);
console.log(` ${pass} pass`);
console.log(` ${fail} fail`);
process.exit(fail ? 1 : 0);
