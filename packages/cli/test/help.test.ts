/** Consistent help: every flag of every command says what it does and its default (or that it is required). */
import { expect, test } from "bun:test";
import { cli } from "./cli.ts";

const subcommands = (...command: string[]) =>
  [...(cli(...command, "--help").out.split("\nSUBCOMMANDS\n")[1] ?? "").matchAll(/^ {2}([a-z-]+) /gm)].map(
    (m) => m[1]!,
  );

test("every flag of every command has a description that names its default", () => {
  const commands = subcommands().flatMap((c) => (c === "bench" ? subcommands("bench").map((s) => [c, s]) : [[c]]));
  expect(commands.length).toBeGreaterThanOrEqual(9);
  const missing: string[] = [];
  for (const command of commands) {
    const help = cli(...command, "--help");
    expect(help.code, help.err).toBe(0);
    const flags = help.out.split("GLOBAL FLAGS")[0]!.split("\nFLAGS\n")[1] ?? "";
    for (const line of flags.split("\n").filter((l) => /^ {2}--/.test(l))) {
      if (!/\bdefault\b|\brequired\b/i.test(line)) missing.push(`${command.join(" ")}: ${line.trim().split(/\s+/)[0]}`);
    }
  }
  expect(missing).toEqual([]);
});
