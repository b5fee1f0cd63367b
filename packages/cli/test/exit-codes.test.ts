/** Exit codes a script can branch on: 2 bad input, 3 a missing file, 4 the adapter or driver, 1 anything else. */
import { describe, expect, test } from "bun:test";
import { DeviceError } from "@textcraftor/core";
import { EXIT_CODES, UserFacingError, classify, exitCodeOf } from "../src/errors.ts";
import { cli } from "./cli.ts";

describe("exit codes", () => {
  test("errors from below the CLI are classified by what they are and what they name", () => {
    const code = (e: unknown) => EXIT_CODES[classify(e)];
    expect(code(new DeviceError("No WebGPU adapter found (bun-webgpu on bun).", "Install Mesa's lavapipe."))).toBe(4);
    expect(code(Object.assign(new Error("ENOENT: no such file or directory, open 'x'"), { code: "ENOENT" }))).toBe(3);
    expect(
      code(new Error("model not found: /x (give a diffusers folder or a single-file .safetensors/.ckpt checkpoint)")),
    ).toBe(3);
    expect(code(new Error("train config: lr must be > 0 (got 0)"))).toBe(2);
    expect(code(new Error("--resume: the run in runs/x was made with lr 0.002 (now 0.0005)"))).toBe(2);
    expect(code(new Error('unknown reward "nope"; known rewards: aesthetic'))).toBe(2);
    expect(code(new TypeError("undefined is not an object"))).toBe(1);
    expect(exitCodeOf(new UserFacingError({ message: "give --prompts FILE" }))).toBe(2);
    expect(exitCodeOf(new UserFacingError({ message: "x", kind: "other" }))).toBe(1);
  });

  test("through the CLI: a diffusers flag name is answered with ours (2); a missing model is 3", () => {
    const typo = cli("train", "--learning_rate", "1e-4");
    expect(typo.code).toBe(2);
    expect(typo.err).toContain(
      "Unrecognized flag: --learning_rate in command textcraftor train\n\n  Did you mean this?\n    --lr",
    );
    const missing = cli("generate", "--prompt", "x", "--model", "/nonexistent/sd15");
    expect(missing.code).toBe(3);
    expect(missing.err).toContain("error: model not found: /nonexistent/sd15");
    expect(cli("train", "--help").code).toBe(0);
  });
});
