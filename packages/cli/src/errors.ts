import { Data, Effect } from "effect";
import { DeviceError } from "@textcraftor/core";

/** A failure to show the user as-is (no stack trace): what went wrong and what to do. */
export class UserFacingError extends Data.TaggedError("UserFacingError")<{ message: string }> {}

export const tryGpu = <A>(run: () => Promise<A>) =>
  Effect.tryPromise({
    try: run,
    catch: (e) => new UserFacingError({ message: e instanceof DeviceError ? e.message : String((e as Error)?.stack ?? e) }),
  });
