/** The progress line fits 80 columns with the numbers first: the bar goes, then rate and ETA, then the tail is cut. */
import { describe, expect, test } from "bun:test";
import { progressLine } from "../src/progress.ts";

describe("progressLine", () => {
  test("short numbers keep the bar, rate and ETA", () => {
    const line = progressLine("training", 20, 80, "loss -0.4123", 0.5);
    expect(line).toBe("training 20/80 loss -0.4123 [=====---------------] | 0.50 it/s ETA 2m00s");
    expect(line.length).toBeLessThanOrEqual(80);
  });

  test("loss and rewards stay visible within 80 columns", () => {
    const extra = "loss -0.4123 colorfulness 0.3121 clip 0.2711";
    const line = progressLine("training", 400, 1000, extra, 0.12);
    expect(line.length).toBeLessThanOrEqual(80);
    expect(line.startsWith(`training 400/1000 ${extra}`)).toBe(true);
    const many = `${extra} aesthetic 5.1234 pickscore 21.0312 hpsv2 0.2712`;
    const cut = progressLine("training", 400, 1000, many, 0.12);
    expect(cut.length).toBe(80);
    expect(cut).toContain("loss -0.4123 colorfulness 0.3121");
    expect(progressLine("training", 4, 1000, extra, 0.12, 40).length).toBe(40);
  });
});
