/** Reading a byte range of a file: how the weight readers take files too large for one buffer piece by piece. */
import type { FileHandle } from "node:fs/promises";

/** Exactly `length` bytes from `position` (a read may return fewer at a time), into `into` when given. */
export async function readRange(
  file: FileHandle,
  position: number,
  length: number,
  into = new ArrayBuffer(length),
): Promise<Uint8Array> {
  const out = new Uint8Array(into, 0, length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await file.read(out, done, length - done, position + done);
    if (bytesRead === 0)
      throw new Error(`${length - done} bytes short at byte ${position + done}: the file ended early`);
    done += bytesRead;
  }
  return out;
}
