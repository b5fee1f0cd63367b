import { Data, Effect } from "effect";

/** A failure to show the user as-is: what went wrong and what to do. */
export class UserFacingError extends Data.TaggedError("UserFacingError")<{ message: string }> {}

/**
 * Runs a promise-returning step; a thrown error becomes a UserFacingError carrying its message. Our errors
 * say what is wrong and what to do, so the stack is noise for users: set TEXTCRAFTOR_DEBUG=1 to see it.
 */
export const attempt = <A>(run: () => Promise<A>) =>
  Effect.tryPromise({
    try: run,
    catch: (e) => new UserFacingError({ message: process.env.TEXTCRAFTOR_DEBUG === "1" ? String((e as Error)?.stack ?? e) : describe(e) }),
  });

/** The message, except for a raw full-disk error, which says neither where nor what to do. */
function describe(e: unknown): string {
  const { code, path } = (e ?? {}) as NodeJS.ErrnoException;
  if (code === "ENOSPC") return `no space left on the device${path ? ` while writing ${path}` : ""}: free some space and run the command again (files already written are whole: they are written atomically)`;
  return String((e as Error)?.message ?? e);
}
