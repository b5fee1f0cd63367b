/**
 * Ctrl-C during a run: the first asks the work to stop at its next safe point (the trainer finishes the step and
 * writes a checkpoint); a second stops at once, leaving the last checkpoint. Either way the terminal is restored.
 * Effect's runMain also interrupts the main fiber on SIGINT; the work runs uninterruptibly, so that interrupt
 * lands once it has stopped and the process exits 130.
 */
export function trapInterrupt({
  restoreTerminal,
  onFirst,
  onSecond,
}: {
  restoreTerminal(): void;
  onFirst(): void;
  onSecond(): void;
}) {
  const controller = new AbortController();
  const handler = () => {
    if (!controller.signal.aborted) {
      controller.abort();
      onFirst();
      return;
    }
    restoreTerminal();
    onSecond();
    process.exit(130);
  };
  process.on("SIGINT", handler);
  return { signal: controller.signal, release: () => process.off("SIGINT", handler) };
}
