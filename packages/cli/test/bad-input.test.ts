/** Bad command lines get one clear error line, no stack trace and no wall of help. */
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Exit } from "effect";
import { attempt } from "../src/errors.ts";
import { cli } from "./cli.ts";

const noStack = (text: string) => expect(text).not.toMatch(/^\s+at /m);

test("a parse error prints the error and one line pointing to --help, not the whole help", () => {
  const { code, out, err } = cli("train", "--steps", "abc");
  expect(code).not.toBe(0);
  expect(err).toContain('Invalid value for flag --steps: "abc"');
  expect(err).toContain("see `bun run cli train --help` for the flags");
  expect(out + err).not.toContain("FLAGS");
  expect((out + err).trim().split("\n").length).toBeLessThan(5);
});

test("--run-dir naming a file, or a place that cannot be created, is refused in one line", () => {
  const file = join(mkdtempSync(join(tmpdir(), "rundir-")), "taken");
  writeFileSync(file, "");
  for (const [dir, why] of [
    [file, "is a file, not a folder"],
    [join(file, "run"), "cannot be created: a folder above it is a file"],
    ["/sys/textcraftor-run", "cannot be created (EPERM)"],
  ]) {
    const { code, err } = cli("train", "--run-dir", dir!);
    expect(code).toBe(2);
    expect(err).toContain(`error: --run-dir ${dir}: ${why}`);
    noStack(err);
  }
});

test("generate --out naming a file is refused in one line before any sampling", () => {
  const file = join(mkdtempSync(join(tmpdir(), "out-")), "taken");
  writeFileSync(file, "");
  const { code, err } = cli("generate", "--prompt", "red apple", "--out", file);
  expect(code).toBe(2);
  expect(err).toContain(`error: --out ${file}: is a file, not a folder`);
  noStack(err);
});

test("an option the reward does not take is refused, naming the ones it does", () => {
  const dir = mkdtempSync(join(tmpdir(), "bogus-"));
  const { code, err } = cli("train", "--reward", "colorfulness=1:bogus=2", "--run-dir", dir);
  expect(code).toBe(2);
  expect(err).toContain('error: reward "colorfulness" has no option "bogus"; its options: none');
  noStack(err);
  // A refused run leaves no lock behind.
  expect(existsSync(join(dir, "train.lock"))).toBe(false);
});

test("a full disk anywhere says which file and what to do", async () => {
  const full = Object.assign(new Error("ENOSPC: no space left on device, write"), {
    code: "ENOSPC",
    path: "/runs/tc/text_encoder/model.safetensors",
  });
  const exit = await Effect.runPromiseExit(
    attempt(async () => {
      throw full;
    }),
  );
  expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain(
    "no space left on the device while writing /runs/tc/text_encoder/model.safetensors: free some space and run the command again",
  );
});

test("a second train on a run folder in use is refused, naming the running one's PID", async () => {
  const dir = mkdtempSync(join(tmpdir(), "locked-"));
  const lockModule = join(import.meta.dir, "../../core/src/training/run-lock.ts");
  const holder = Bun.spawn(
    [
      "bun",
      "-e",
      `await (await import(${JSON.stringify(lockModule)})).acquireRunLock(${JSON.stringify(dir)}); console.log("locked"); await Bun.sleep(120000);`,
    ],
    { stdout: "pipe" },
  );
  try {
    expect(new TextDecoder().decode((await holder.stdout.getReader().read()).value)).toContain("locked");
    const { code, err } = cli("train", "--run-dir", dir, "--steps", "1");
    expect(code).toBe(1);
    expect(err).toContain(`error: ${dir} is in use: process ${holder.pid} has been training there since`);
    noStack(err);
  } finally {
    holder.kill(9);
    await holder.exited;
  }
});
