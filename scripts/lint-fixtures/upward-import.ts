// Lint fixture, outside the tree's lint scope: scripts/lint.test.ts copies it into each package of a scratch copy
// of the layout and expects the import-boundary rule to refuse what points up (webgpu-kernels ← core ← rewards ← cli).
import { initRuntime } from "@textcraftor/core";
import { builtinRewards } from "@textcraftor/rewards";
import { main } from "../../../cli/src/main.ts";

export const upward = [initRuntime, builtinRewards, main];
