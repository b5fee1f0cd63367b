/** The registry of built-ins, reward specs, loading by spec, weighting, and user plugin files. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tensor, combineRewards, initRuntime, scopeAsync, type Gpu } from "@textcraftor/core";
import { builtinRewards, createRegistry, loadRewardPlugin, loadRewards, parseRewardSpec } from "../src/index.ts";
import { PROMPTS, IMAGE_SHAPE, images } from "./helpers.ts";

let gpu: Gpu;
const dir = mkdtempSync(join(tmpdir(), "reward-plugins-"));
beforeAll(async () => {
  ({ gpu } = await initRuntime());
});
afterAll(() => rmSync(dir, { recursive: true }));

describe("registry", () => {
  test("holds the paper's four reward models and the weight-free statistics, each described", () => {
    const plugins = createRegistry().list();
    expect(plugins.map((p) => p.name)).toEqual([
      "aesthetic",
      "clip",
      "pickscore",
      "hpsv2",
      "colorfulness",
      "contrast",
      "brightness",
    ]);
    expect(plugins.map((p) => p.needs)).toEqual([
      "image",
      "image+prompt",
      "image+prompt",
      "image+prompt",
      "image",
      "image",
      "image",
    ]);
    for (const p of plugins) expect(p.description.length).toBeGreaterThan(10);
    for (const p of plugins.slice(0, 4)) expect(p.weightFiles!.length).toBeGreaterThan(0);
    expect(builtinRewards()).toEqual(plugins);
  });

  test("an unknown name lists the known ones; a second plugin of one name is refused", () => {
    expect(() => createRegistry().get("imagereward")).toThrow(
      'unknown reward "imagereward"; known rewards: aesthetic, brightness, clip, colorfulness, contrast, hpsv2, pickscore',
    );
    expect(() => createRegistry([builtinRewards()[0]!])).toThrow('a reward named "aesthetic" is already registered');
  });
});

describe("parseRewardSpec", () => {
  test("name, weight, weights path and options", () => {
    expect(parseRewardSpec("aesthetic=3")).toEqual({ name: "aesthetic", weight: 3, options: {} });
    expect(parseRewardSpec("clip=50:weights=/models/ViT-g-14")).toEqual({
      name: "clip",
      weight: 50,
      weights: "/models/ViT-g-14",
      options: {},
    });
    expect(parseRewardSpec("aesthetic=1:weights=/x:mlp=/y.pth")).toEqual({
      name: "aesthetic",
      weight: 1,
      weights: "/x",
      options: { mlp: "/y.pth" },
    });
    expect(parseRewardSpec("colorfulness")).toEqual({ name: "colorfulness", weight: 1, options: {} });
    expect(parseRewardSpec("brightness=-0.5:target=0.4")).toEqual({
      name: "brightness",
      weight: -0.5,
      options: { target: "0.4" },
    });
    expect(parseRewardSpec("hpsv2=100:weights=C:\\models\\HPS_v2_compressed.pt").weights).toBe(
      "C:\\models\\HPS_v2_compressed.pt",
    );
  });

  test("malformed specs say what is wrong and show the syntax", () => {
    const syntax = "the syntax is name[=weight][:weights=PATH][:key=value]...";
    expect(() => parseRewardSpec("aesthetic=high")).toThrow(
      `reward spec "aesthetic=high": the weight "high" is not a number; ${syntax}`,
    );
    expect(() => parseRewardSpec("aesthetic=")).toThrow('the weight "" is not a number');
    expect(() => parseRewardSpec("Aesthetic=1")).toThrow('"Aesthetic" is not a reward name');
    expect(() => parseRewardSpec("clip=1:weights=/a:weights=/b")).toThrow('"weights" is given twice');
    expect(() => parseRewardSpec("clip=1:act=")).toThrow('"act=" has no value');
  });
});

describe("loadRewards and combineRewards", () => {
  test("weights each term, reports each term's batch mean, and totals Σ γ·mean(R)", async () => {
    const rewards = await loadRewards(
      ["colorfulness=2", "brightness=-1:target=0.2"].map(parseRewardSpec),
      createRegistry(),
      gpu,
    );
    await scopeAsync(async () => {
      const x = Tensor.from(images(), IMAGE_SHAPE);
      const { total, terms } = combineRewards(rewards, x, PROMPTS);
      const each = await Promise.all(rewards.map(({ reward }) => reward.score(x, PROMPTS).toArray()));
      const [c, b] = each.map((s) => (s[0]! + s[1]!) / 2) as [number, number];
      expect([...terms.keys()]).toEqual(["colorfulness", "brightness"]);
      expect(await terms.get("colorfulness")!.item()).toBeCloseTo(c, 6);
      expect(await terms.get("brightness")!.item()).toBeCloseTo(b, 6);
      expect(await total.item()).toBeCloseTo(2 * c - b, 6);
    });
  });

  test("refuses unknown options, repeated rewards and rewards without their weights, naming the reward", async () => {
    const registry = createRegistry();
    await expect(loadRewards([parseRewardSpec("brightness=1:traget=0.3")], registry, gpu)).rejects.toThrow(
      'reward "brightness" has no option "traget"; its options: target (and weights=PATH)',
    );
    // A plugin that lists no options takes none: a typo is not silently ignored.
    await expect(loadRewards([parseRewardSpec("colorfulness=1:bogus=2")], registry, gpu)).rejects.toThrow(
      'reward "colorfulness" has no option "bogus"; its options: none (and weights=PATH)',
    );
    await expect(loadRewards(["contrast=1", "contrast=2"].map(parseRewardSpec), registry, gpu)).rejects.toThrow(
      'reward "contrast" is given twice',
    );
    await expect(loadRewards([parseRewardSpec("hpsv2=100")], registry, gpu)).rejects.toThrow(
      /^reward "hpsv2" needs weights: .*it expects HPS_v2_compressed\.pt/,
    );
    await expect(loadRewards([parseRewardSpec("brightness=1:target=x")], registry, gpu)).rejects.toThrow(
      'reward "brightness": option target=x: expected a number',
    );
  });
});

describe("loadRewardPlugin", () => {
  const plugin = (name: string, source: string) => {
    const file = join(dir, name);
    writeFileSync(file, source);
    return file;
  };

  test("takes the default export, or the one named reward", async () => {
    const body = `{ name: "half", description: "the identity, for tests", needs: "image", load: async () => ({ score: (x) => x }) }`;
    expect((await loadRewardPlugin(plugin("default.ts", `export default ${body};`))).name).toBe("half");
    expect((await loadRewardPlugin(plugin("named.js", `export const reward = ${body};`))).name).toBe("half");
  });

  test("a file that is missing, fails to import or exports something else says what a plugin must look like", async () => {
    await expect(loadRewardPlugin(join(dir, "nope.ts"))).rejects.toThrow(
      "reward plugin " + join(dir, "nope.ts") + " not found",
    );
    await expect(loadRewardPlugin(plugin("broken.ts", "export default {"))).rejects.toThrow(
      "cannot import reward plugin",
    );
    await expect(loadRewardPlugin(plugin("empty.ts", "export const x = 1;"))).rejects.toThrow(
      'exports no reward plugin: add a default export (or one named "reward")',
    );
    const bad = plugin("bad.ts", `export default { name: "My Reward", needs: "text", load: 3 };`);
    await expect(loadRewardPlugin(bad)).rejects.toThrow(
      `${bad} is not a reward plugin: name must be a lowercase string of letters, digits, "-" or "_" (got "My Reward"); description must be a string`,
    );
    await expect(loadRewardPlugin(bad)).rejects.toThrow(
      'needs must be "image" or "image+prompt" (got "text"); load must be a function',
    );
  });

  test("a plugin whose load resolves to no score is refused when loaded", async () => {
    const hollow = await loadRewardPlugin(
      plugin(
        "hollow.ts",
        `export default { name: "hollow", description: "no score", needs: "image", load: async () => ({}) };`,
      ),
    );
    await expect(loadRewards([parseRewardSpec("hollow")], createRegistry([hollow]), gpu)).rejects.toThrow(
      'reward "hollow": load() must resolve to an object with a score(images, prompts) method',
    );
  });
});
