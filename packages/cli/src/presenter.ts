/**
 * How a command line that does not parse is shown: the error, then one line pointing to the command's --help.
 * effect/cli's default prints the whole help (~40 lines for train) before the error, which buries it.
 */
import { Console, Effect } from "effect";
import { CliError, CliOutput } from "effect/cli";
import { trainingScriptName } from "./suggest.ts";

/** A flag named as diffusers' or kohya's scripts name it (--learning_rate) gets ours as the suggestion. */
const withTrainingScriptName = (e: CliError.CliError) => {
  if (e._tag !== "UnrecognizedOption" || e.suggestions.length) return e;
  const ours = trainingScriptName(e.option.replace(/^-+/, ""));
  return ours
    ? new CliError.UnrecognizedOption({ option: e.option, command: e.command, suggestions: [`--${ours}`] })
    : e;
};

export const conciseUsageErrors = CliOutput.layerPresenter({
  present: (event) =>
    event._tag !== "InvalidInvocation"
      ? CliOutput.defaultPresenter.present(event)
      : Effect.gen(function* () {
          const formatter = yield* CliOutput.Formatter;
          yield* Console.error(formatter.formatErrors(event.errors.map(withTrainingScriptName)));
          const command = event.commandPath.slice(1);
          yield* Console.error(
            `see \`bun run cli ${[...command, "--help"].join(" ")}\` for ${command.length ? "the flags" : "the commands"}`,
          );
        }),
});
