import { Data, Effect } from "effect";
import { DeviceError } from "@textcraftor/core";

/**
 * What kind of failure it was, for the exit code a script can branch on: 2 bad input (a flag, a setting, a file's
 * contents), 3 a file or folder that is not there, 4 the GPU adapter or its driver, 1 anything else.
 */
export type FailureKind = "input" | "missing" | "device" | "other";
export const EXIT_CODES: Record<FailureKind, number> = { input: 2, missing: 3, device: 4, other: 1 };

/** A failure to show the user as-is: what went wrong and what to do. Raised by a command itself, it is bad input unless told. */
export class UserFacingError extends Data.TaggedError("UserFacingError")<{ message: string; kind?: FailureKind }> {}

export const exitCodeOf = (e: UserFacingError) => EXIT_CODES[e.kind ?? "input"];

/** The kind of an error thrown below the CLI, from what it is and what it names. */
export function classify(e: unknown): FailureKind {
  const { code, message = "" } = (e ?? {}) as NodeJS.ErrnoException;
  if (e instanceof DeviceError || (e as Error)?.name === "DeviceError") return "device";
  if (code === "ENOENT" || /\bnot found\b|no such file|does not exist/i.test(message)) return "missing";
  // Our checks name the setting or flag at fault ("train config: lr must be > 0", "--seeds …", "reward \"x\": …").
  if (
    /^(train config|--[a-z]|reward\b|unknown reward|[^:]*: expected\b)|\bexpected\b.*\(got\b|must be\b|holds no prompts/i.test(
      message,
    )
  )
    return "input";
  return "other";
}

/**
 * Runs a promise-returning step; a thrown error becomes a UserFacingError carrying its message. Our errors
 * say what is wrong and what to do, so the stack is noise for users: set TEXTCRAFTOR_DEBUG=1 to see it.
 */
export const attempt = <A>(run: () => Promise<A>) =>
  Effect.tryPromise({
    try: run,
    catch: (e) =>
      new UserFacingError({
        message: process.env.TEXTCRAFTOR_DEBUG === "1" ? String((e as Error)?.stack ?? e) : describe(e),
        kind: classify(e),
      }),
  });

/** The message, except for a raw full-disk error, which says neither where nor what to do. */
function describe(e: unknown): string {
  const { code, path } = (e ?? {}) as NodeJS.ErrnoException;
  if (code === "ENOSPC")
    return `no space left on the device${path ? ` while writing ${path}` : ""}: free some space and run the command again (files already written are whole: they are written atomically)`;
  return String((e as Error)?.message ?? e);
}
