/**
 * A progress line for long work: the numbers first (done/total, then what the caller adds, such as loss and
 * rewards), then rate and ETA, then a bar, each dropped in turn so the line fits the terminal (80 columns at
 * most). When stderr is not a terminal it degrades to plain log lines at 25 % steps.
 */
import cliProgress from "cli-progress";

const MAX_WIDTH = 80;

const duration = (s: number) =>
  !Number.isFinite(s)
    ? "?"
    : s >= 3600
      ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`
      : s >= 60
        ? `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, "0")}s`
        : `${Math.ceil(s)}s`;

/** The line for `done` of `total` at `rate` items per second, at most `width` characters. */
export function progressLine(
  label: string,
  done: number,
  total: number,
  extra: string,
  rate: number,
  width = MAX_WIDTH,
): string {
  const head = `${label} ${done}/${total}${extra ? ` ${extra}` : ""}`;
  const timing = ` | ${rate.toFixed(2)} it/s ETA ${duration(rate > 0 ? (total - done) / rate : Number.POSITIVE_INFINITY)}`;
  const barWidth = Math.min(20, width - head.length - timing.length - 3);
  if (barWidth >= 5) {
    const filled = Math.round((barWidth * done) / Math.max(1, total));
    return `${head} [${"=".repeat(filled)}${"-".repeat(barWidth - filled)}]${timing}`;
  }
  if (head.length + timing.length <= width) return head + timing;
  return head.length <= width ? head : `${head.slice(0, width - 1)}…`;
}

export function progressBar(label: string, total: number) {
  if (!process.stderr.isTTY) {
    let last = 0;
    return {
      update(done: number, extra = "") {
        // Log lines at 25 % steps so CI logs show progress without flooding.
        if (done === total || done - last >= Math.max(1, total / 4)) {
          last = done;
          console.error(`${label}: ${done}/${total} ${extra}`);
        }
      },
      stop() {},
    };
  }
  // cli-progress hides the cursor and turns off line wrap while it runs; stop() restores both.
  const bar = new cliProgress.SingleBar({
    format: (_o, _p, payload: { line?: string }) => payload.line ?? "",
    hideCursor: true,
    stream: process.stderr,
  });
  const start = performance.now();
  const width = () => Math.min(MAX_WIDTH, (process.stderr.columns || MAX_WIDTH) - 1);
  bar.start(total, 0, { line: progressLine(label, 0, total, "", 0, width()) });
  let stopped = false;
  return {
    update(done: number, extra = "") {
      if (stopped) return;
      const rate = done / ((performance.now() - start) / 1000);
      bar.update(done, { line: progressLine(label, done, total, extra, rate, width()) });
    },
    stop() {
      if (!stopped) {
        stopped = true;
        bar.stop();
      }
    },
  };
}
