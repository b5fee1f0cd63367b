/** bench/cli.ts builds one hyperfine command per runtime around the installed CLI, with both exports. */
import { expect, test } from "bun:test";
import { hyperfineArgs } from "./cli.ts";

test("hyperfine gets a named generate command for Bun, Node and Deno, the run counts and both exports", () => {
  const args = hyperfineArgs("/t/node_modules/@textcraftor/cli/dist/main.js", "/t/images", {
    runs: 5,
    warmup: 1,
    json: "/o/cli.json",
    markdown: "/o/cli.md",
  });
  expect(args.slice(0, 9)).toEqual([
    "hyperfine",
    "--runs",
    "5",
    "--warmup",
    "1",
    "--export-json",
    "/o/cli.json",
    "--export-markdown",
    "/o/cli.md",
  ]);
  const commands = args.slice(9);
  expect(commands.filter((_, i) => i % 3 === 0)).toEqual(["--command-name", "--command-name", "--command-name"]);
  const named = Object.fromEntries([0, 1, 2].map((i) => [commands[3 * i + 1], commands[3 * i + 2]]));
  expect(Object.keys(named)).toEqual(["bun", "node", "deno"]);
  expect(named.node).toBe(
    "node /t/node_modules/@textcraftor/cli/dist/main.js generate --prompt 'red apple' --out /t/images/node",
  );
  expect(named.deno).toMatch(
    /node_modules\/\.bin\/deno run --unstable-webgpu --allow-all \/t\/node_modules\/@textcraftor\/cli\/dist\/main\.js generate --prompt 'red apple' --out \/t\/images\/deno$/,
  );
  expect(named.bun).toEndWith(
    " /t/node_modules/@textcraftor/cli/dist/main.js generate --prompt 'red apple' --out /t/images/bun",
  );
});
