/** `--device N`, the one flag every command that opens an adapter takes (train, generate, mix, eval, info, bench). */
import { Option } from "effect";
import { Flag } from "effect/cli";
import type { OpenDeviceOptions } from "@textcraftor/core";

export const deviceFlag = Flag.Int("device").pipe(
  Flag.withDescription(
    "The adapter to run on, by its index in `bun run cli info`; default TEXTCRAFTOR_DEVICE, else under mpirun/srun the local rank (modulo the GPUs found), else the binding's own choice",
  ),
  Flag.optional,
);

export const deviceOptions = (device: Option.Option<number>): OpenDeviceOptions => ({
  device: Option.getOrUndefined(device),
});
