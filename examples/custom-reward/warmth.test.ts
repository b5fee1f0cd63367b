/** The example plugin end to end: loaded by path, registered, weighted with a built-in and backpropagated. */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { Tensor, combineRewards, initRuntime, scopeAsync } from "@textcraftor/core";
import { createRegistry, loadRewardPlugin, loadRewards, parseRewardSpec } from "@textcraftor/rewards";

test("warmth loads with loadRewardPlugin and scores through combineRewards", async () => {
  const { gpu } = await initRuntime();
  const registry = createRegistry([await loadRewardPlugin(join(import.meta.dir, "warmth.ts"))]);
  const rewards = await loadRewards(["warmth=2", "brightness=0.5:target=0.25"].map(parseRewardSpec), registry, gpu);

  // Image 0 is uniformly (R, G, B) = (0.8, 0.4, 0.2), image 1 is (0.1, 0.3, 0.6).
  const colours = [
    [0.8, 0.4, 0.2],
    [0.1, 0.3, 0.6],
  ];
  const pixels = colours.flatMap((rgb) => rgb.flatMap((v) => new Array<number>(16).fill(v)));
  await scopeAsync(async () => {
    const images = Tensor.from(pixels, [2, 3, 4, 4]).requireGrad();
    const { total, terms } = combineRewards(rewards, images, ["a sunset", "the sea"]);
    const warmth = (0.6 + -0.5) / 2;
    const luma = colours.map(([r, g, b]) => 0.299 * r! + 0.587 * g! + 0.114 * b!);
    const brightness = luma.reduce((s, y) => s - (y - 0.25) ** 2, 0) / 2;
    expect(await terms.get("warmth")!.item()).toBeCloseTo(warmth, 6);
    expect(await terms.get("brightness")!.item()).toBeCloseTo(brightness, 6);
    expect(await total.item()).toBeCloseTo(2 * warmth + 0.5 * brightness, 6);

    total.backward();
    const grad = await images.grad!.toArray();
    // ∂/∂R of 2·mean_b(mean(R − B)) is 2 / (2 images · 16 pixels), plus brightness's share through the luma.
    const dBrightness = (b: number) => (0.5 * -2 * (luma[b]! - 0.25)) / 2 / 16;
    expect(grad[0]!).toBeCloseTo(2 / 32 + 0.299 * dBrightness(0), 6);
    expect(grad[16]!).toBeCloseTo(0.587 * dBrightness(0), 6);
    expect(grad[32 + 48]!).toBeCloseTo(-2 / 32 + 0.114 * dBrightness(1), 6);
    images.grad!.dispose();
  });
});
