/** A terminal progress bar (rate and ETA) for long work; silent when output is not a terminal. */
import cliProgress from "cli-progress";

export function progressBar(label: string, total: number) {
  if (!process.stderr.isTTY) {
    let last = 0;
    return {
      update(done: number, extra = "") {
        // Log lines at 25 % steps so CI logs show progress without flooding.
        if (done === total || done - last >= Math.max(1, total / 4)) { last = done; console.error(`${label}: ${done}/${total} ${extra}`); }
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total} | {rate} it/s | ETA {eta_formatted} {extra}`, hideCursor: true, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  const start = performance.now();
  bar.start(total, 0, { rate: "0.00", extra: "" });
  return {
    update(done: number, extra = "") { bar.update(done, { rate: (done / ((performance.now() - start) / 1000)).toFixed(2), extra }); },
    stop() { bar.stop(); },
  };
}
