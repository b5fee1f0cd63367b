// Preload: counts KernelRunner.prototype.run calls per kernel family (the memory plan's meta device excluded) and
// prints them at exit. From the repository root: bun --preload ./bench/count-dispatches.ts packages/cli/src/main.ts train ...
// For another revision, copy this file into that tree's bench/ so that it patches that tree's runner.
import { KernelRunner } from "../packages/webgpu-kernels/src/runner.ts";
const counts = new Map<string, number>();
const run = KernelRunner.prototype.run;
KernelRunner.prototype.run = function (this: KernelRunner, d) {
  if (this.device.label !== "meta") {
    const family = d.key.split(/[:|]/)[0]!;
    counts.set(family, (counts.get(family) ?? 0) + 1);
  }
  return run.call(this, d);
};
process.on("exit", () => {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 12);
  console.error(`DISPATCHES total=${total} ${top.map(([k, n]) => `${k}=${n}`).join(" ")}`);
});
