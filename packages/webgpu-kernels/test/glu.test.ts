import { describe, test } from "bun:test";
import { geglu, gegluBackward, gegluBackwardCpu, gegluCpu } from "../src/glu.ts";
import { download, empty, expectClose, getRunner, random, upload } from "./helpers.ts";

describe("GEGLU", () => {
  test("forward and backward match the CPU references on awkward shapes", async () => {
    const r = await getRunner();
    for (const [rows, n] of [
      [1, 1],
      [3, 5],
      [77, 40],
      [130, 257],
    ] as const) {
      const x = random(rows * 2 * n, rows + n, 3),
        g = random(rows * n, n, 1);
      const out = empty(r, rows * n),
        gradX = empty(r, rows * 2 * n);
      const xb = upload(r, x);
      geglu(r, xb, out, { rows, n });
      gegluBackward(r, xb, upload(r, g), gradX, { rows, n });
      expectClose(await download(r, out, rows * n), gegluCpu(x, { rows, n }), 1e-5, `geglu [${rows}, ${n}]`);
      expectClose(
        await download(r, gradX, rows * 2 * n),
        gegluBackwardCpu(x, g, { rows, n }),
        1e-5,
        `geglu backward [${rows}, ${n}]`,
      );
    }
  });
});
