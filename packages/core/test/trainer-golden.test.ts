/** One TextCraftor training step's text-encoder gradient against PyTorch (scripts/fixtures/trainer_golden.py). */
import { beforeAll, test } from "bun:test";
import * as T from "../src/index.ts";
import { checkTrainingStepGolden } from "./trainer-golden.ts";

beforeAll(async () => {
  await T.initRuntime();
});

// With checkpointing (the default: each UNet call, its blocks, the VAE's up blocks) and without, the same gradient.
test.each([true, false])(
  "the text encoder's gradient for one training step matches PyTorch (gradient checkpointing %p)",
  (on) => checkTrainingStepGolden(on),
);
