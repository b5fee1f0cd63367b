#!/usr/bin/env bun
/** `bun run cli <command>`: assembles core and the reward plugins into commands. */
import { NodeRuntime, NodeServices } from "@effect/platform-node";
import { Console, Effect } from "effect";
import { Command } from "effect/cli";
import { bench } from "./commands/bench.ts";
import { evalCommand } from "./commands/eval.ts";
import { generate, mix } from "./commands/generate.ts";
import { info } from "./commands/info.ts";
import { rewardsCommand } from "./commands/rewards.ts";
import { trainCommand } from "./commands/train.ts";
import { EXIT_CODES, exitCodeOf } from "./errors.ts";
import { conciseUsageErrors } from "./presenter.ts";

const cli = Command.make("textcraftor").pipe(
  Command.withDescription("Fine-tune a diffusion model's text encoder with reward models (TextCraftor), on WebGPU"),
  Command.withSubcommands([info, trainCommand, generate, mix, evalCommand, rewardsCommand, bench]),
  Command.run({ version: "0.1.0" }),
);

cli.pipe(
  Effect.catchTag("UserFacingError", (e) =>
    Console.error(`error: ${e.message}`).pipe(
      Effect.andThen(
        Effect.sync(() => {
          process.exitCode = exitCodeOf(e);
        }),
      ),
    ),
  ),
  // A command line that does not parse (the presenter has shown why) is bad input; plain --help is not.
  Effect.catchTag("ShowHelp", (e) =>
    Effect.sync(() => {
      if (e.errors.length) process.exitCode = EXIT_CODES.input;
    }),
  ),
  Effect.provide(conciseUsageErrors),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain,
);
