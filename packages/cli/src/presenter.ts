/**
 * How a command line that does not parse is shown: the error, then one line pointing to the command's --help.
 * effect/cli's default prints the whole help (~40 lines for train) before the error, which buries it.
 */
import { Console, Effect } from "effect";
import { CliOutput } from "effect/cli";

export const conciseUsageErrors = CliOutput.layerPresenter({
  present: (event) => event._tag !== "InvalidInvocation" ? CliOutput.defaultPresenter.present(event) : Effect.gen(function* () {
    const formatter = yield* CliOutput.Formatter;
    yield* Console.error(formatter.formatErrors(event.errors));
    yield* Console.error(`see \`bun run cli ${event.commandPath.slice(1).concat("--help").join(" ")}\` for the flags`);
  }),
});
