import { Console, Effect } from "effect";
import { Command, Flag } from "effect/cli";
import { createRegistry, loadRewardPlugin } from "@textcraftor/rewards";
import { attempt } from "../errors.ts";

export const rewardsCommand = Command.make(
  "rewards",
  {
    rewardPlugin: Flag.String("reward-plugin").pipe(
      Flag.withDescription("Also list the reward in this file (repeatable); default none"),
      Flag.atLeast(0),
    ),
  },
  Effect.fn(function* ({ rewardPlugin }) {
    const registry = createRegistry();
    for (const path of rewardPlugin) registry.register(yield* attempt(() => loadRewardPlugin(path)));
    for (const p of registry.list()) {
      yield* Console.log(`${p.name.padEnd(14)} ${p.description}`);
      yield* Console.log(
        `${"".padEnd(14)} needs: ${p.needs}${p.weightFiles?.length ? `; weights: ${p.weightFiles.join(", ")}` : "; no weights"}`,
      );
      for (const [k, v] of Object.entries(p.options ?? {})) yield* Console.log(`${"".padEnd(14)} option ${k}: ${v}`);
    }
    yield* Console.log(`\nuse: --reward name[=weight][:weights=PATH][:key=value]...`);
  }),
).pipe(Command.withDescription("List the reward plugins, what each needs and its options"));
