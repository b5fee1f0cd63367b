/**
 * Damaged and hostile torch checkpoints (issue #19): each case is a fault class an independent test found; each
 * must end in a TorchCheckpointError that says what is wrong, quickly and without allocating beyond the file.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { deflateSync } from "fflate";
import { readTorchCheckpoint, TorchCheckpointError } from "../src/io/torch-zip.ts";
import { deflatedZeros, floats, global, int, pickle, str, tensorOps, tensorPickle, torchZip } from "./io-builders.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(join(import.meta.dir, "fixtures/io", name)));

async function refusal(bytes: Uint8Array): Promise<Error> {
  try {
    await readTorchCheckpoint(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(TorchCheckpointError);
    return e as Error;
  }
  throw new Error("the checkpoint was read, but it should have been refused");
}

describe("zip sizes are checked against each other and the pickle before reading", () => {
  test("a stored entry whose stated size exceeds its stored bytes is refused (it would read the next header)", async () => {
    const bytes = torchZip({
      "data.pkl": tensorPickle("FloatStorage", 4, 0, [4], [1]),
      "data/0": { data: floats([1, 2, 3]), size: 16 },
    });
    expect((await refusal(bytes)).message).toMatch(
      /entry archive\/data\/0 is stored uncompressed, yet its sizes differ \(12 bytes stored, 16 bytes stated\)/,
    );
  });

  test("a local header that disagrees with the central directory is refused", async () => {
    const bytes = torchZip({
      "data.pkl": tensorPickle("FloatStorage", 4, 0, [4], [1]),
      "data/0": { data: floats([1, 2, 3, 4]), localSize: 12 },
    });
    expect((await refusal(bytes)).message).toMatch(
      /its local header says 16 bytes \(12 inflated\), the central directory 16 \(16\)/,
    );
  });

  test("a deflated entry of compressed size 0 is not read as zeros", async () => {
    const bytes = torchZip({
      "data.pkl": tensorPickle("FloatStorage", 3, 0, [3], [1]),
      "data/0": { data: new Uint8Array(0), method: 8, size: 12 },
    });
    expect((await refusal(bytes)).message).toMatch(/inflates to 0 bytes, not the 12 its header states/);
  });

  test("a stream that inflates to 1 GiB under a 12-byte header stops at 12 bytes, in well under a second", async () => {
    const bomb = deflatedZeros(2 ** 30);
    const bytes = torchZip({
      "data.pkl": tensorPickle("FloatStorage", 3, 0, [3], [1]),
      "data/0": { data: bomb, method: 8, size: 12 },
    });
    const start = performance.now();
    expect((await refusal(bytes)).message).toMatch(
      /entry archive\/data\/0 inflates to more than the 12 bytes its header states/,
    );
    expect(performance.now() - start).toBeLessThan(1000);
  });

  test("a 1.6 MB file of 256 MiB of zeros, its sizes all consistent, is refused before inflating", async () => {
    const size = 2 ** 28;
    const bytes = torchZip({
      "data.pkl": tensorPickle("FloatStorage", size / 4, 0, [size / 4], [1]),
      "data/0": { data: deflatedZeros(size), method: 8, size },
    });
    const start = performance.now();
    expect((await refusal(bytes)).message).toMatch(
      /entry archive\/data\/0 would bring what the archive inflates to 268435456 bytes, more than 64 times the file's \d+; .* decompression bomb/,
    );
    expect(performance.now() - start).toBeLessThan(1000);
  });

  test("a stated size beyond what DEFLATE can encode is refused before anything is allocated", async () => {
    const bytes = torchZip({
      "data.pkl": tensorPickle("FloatStorage", 2 ** 28, 0, [2 ** 28], [1]),
      "data/0": { data: deflateSync(floats([0])), method: 8, size: 2 ** 30 },
    });
    expect((await refusal(bytes)).message).toMatch(
      /claims to inflate \d+ bytes to 1073741824, beyond what DEFLATE can encode/,
    );
  });

  test("a deflated data.pkl stating 1 GiB is refused before it is inflated", async () => {
    const bytes = torchZip({ "data.pkl": { data: new Uint8Array(2 ** 20 + 1024), method: 8, size: 2 ** 30 } });
    expect((await refusal(bytes)).message).toMatch(
      /archive\/data.pkl states 1073741824 bytes, more than the 268435456 any torch.save file holds there/,
    );
  });

  test("an invalid DEFLATE stream is a damaged archive, not fflate's bare error", async () => {
    const bytes = torchZip({
      "data.pkl": tensorPickle("FloatStorage", 1, 0, [1], [1]),
      "data/0": { data: new Uint8Array([0x07, 0, 0, 0]), method: 8, size: 4 },
    });
    expect((await refusal(bytes)).message).toMatch(
      /entry archive\/data\/0 is not a valid DEFLATE stream \(invalid block type\)/,
    );
  });

  test("a central entry whose extra field runs past the directory is refused (was a RangeError)", async () => {
    const bytes = fixture("checkpoint-zip64.pt");
    const view = new DataView(bytes.buffer);
    let last = -1;
    for (let i = 0; i + 4 <= bytes.length; i++) if (view.getUint32(i, true) === 0x02014b50) last = i;
    view.setUint16(last + 30, 0xffff, true);
    expect((await refusal(bytes)).message).toMatch(/central directory entry \d+ runs past the end of the directory/);
  });

  test("central entries pointing at the same data are refused (a small file must not read as a large one)", async () => {
    const bytes = torchZip({
      "data.pkl": tensorPickle("FloatStorage", 1, 0, [1], [1]),
      "data/0": floats([1]),
      "data/1": floats([2]),
    });
    const view = new DataView(bytes.buffer);
    const central: number[] = [];
    for (let i = 0; i + 4 <= bytes.length; i++) if (view.getUint32(i, true) === 0x02014b50) central.push(i);
    view.setUint32(central[2]! + 42, view.getUint32(central[1]! + 42, true), true);
    expect((await refusal(bytes)).message).toMatch(/entries archive\/data\/(0|1) and archive\/data\/(0|1) overlap/);
  });

  test("a size marked as 64-bit without a ZIP64 extra field is refused", async () => {
    const bytes = torchZip({
      "data.pkl": tensorPickle("FloatStorage", 1, 0, [1], [1]),
      "data/0": { data: floats([1]), size: 0xffffffff, compressedSize: 0xffffffff },
    });
    expect((await refusal(bytes)).message).toMatch(
      /entry archive\/data\/0: its size is marked as 64-bit, but there is no ZIP64 extra field/,
    );
  });
});

describe("the pickle's shape costs no more than its bytes", () => {
  test("40 levels of (L, L) through the memo (2^40 paths) read at once; the shared tensor is named once", async () => {
    // L0 = {"w": tensor}; Li = (Li-1, Li-1): Li-1 on the stack and again from the memo.
    const levels = Array.from({ length: 40 }, (_, i) => [0x68, i, 0x86, 0x71, i + 1]).flat();
    const data = pickle(0x7d, 0x28, str("w"), tensorOps("FloatStorage", 1, 0, [1], [1]), 0x75, 0x71, 0, ...levels);
    const { tensors } = await readTorchCheckpoint(torchZip({ "data.pkl": data, "data/0": floats([7]) }));
    expect([...tensors.keys()]).toEqual([`${"0.".repeat(40)}w`]);
  });

  test("tied weights (one tensor under two keys) keep both names", async () => {
    const data = pickle(
      0x7d,
      0x28,
      str("a"),
      tensorOps("FloatStorage", 2, 0, [2], [1]),
      0x71,
      9,
      str("b"),
      0x68,
      9,
      0x75,
    );
    const { tensors } = await readTorchCheckpoint(torchZip({ "data.pkl": data, "data/0": floats([1, 2]) }));
    expect([...tensors.keys()]).toEqual(["a", "b"]);
    expect([...tensors.get("b")!.data]).toEqual([1, 2]);
  });

  test("a million nested lists end in a clear error, not a stack overflow", async () => {
    const depth = 1_000_000;
    const data = new Uint8Array(2 + depth + (depth - 1) + 1);
    data.set([0x80, 2]);
    data.fill(0x5d, 2, 2 + depth); // EMPTY_LIST
    data.fill(0x61, 2 + depth, data.length - 1); // APPEND
    data[data.length - 1] = 0x2e;
    expect((await refusal(torchZip({ "data.pkl": data }))).message).toMatch(
      /its dicts and lists nest more than 1000 levels deep/,
    );
  });

  test("OrderedDict(5) is a malformed pickle, not a TypeError", async () => {
    const data = pickle(global("collections", "OrderedDict"), 0x28, int(5), 0x74, 0x52);
    expect((await refusal(torchZip({ "data.pkl": data }))).message).toMatch(
      /OrderedDict is called with the number 5, not a list of \(key, value\) pairs/,
    );
  });
});

describe("views never materialise beyond what the file's bytes justify", () => {
  test("a stride-0 view of one element as 2^28 elements (1 GiB) is refused", async () => {
    const bytes = torchZip({ "data.pkl": tensorPickle("FloatStorage", 1, 0, [2 ** 28], [0]), "data/0": floats([1]) });
    expect(bytes.length).toBeLessThan(1024);
    expect((await refusal(bytes)).message).toMatch(
      /tensor "w" \(shape \[268435456\], stride \[0\]\) repeats stored elements beyond what a \d+-byte file justifies.*\.clone\(\)/,
    );
  });

  test("many full views of one storage are refused once they outgrow the file", async () => {
    const numel = 2 ** 12,
      views = 1100; // 4.5M values from 4096 stored in a ~30 KB file
    const items = Array.from({ length: views }, (_, i) =>
      [str(`v${i}`), i === 0 ? [tensorOps("FloatStorage", numel, 0, [numel], [1]), 0x71, 1] : [0x68, 1]].flat(2),
    );
    const data = pickle(0x7d, 0x28, ...items, 0x75);
    const bytes = torchZip({ "data.pkl": data, "data/0": new Uint8Array(numel * 4) });
    expect((await refusal(bytes)).message).toMatch(/tensor "v\d+" .*repeats stored elements/);
  });

  test("a small broadcast view (as in the fixture's expanded tensor) is still read", async () => {
    const bytes = torchZip({
      "data.pkl": tensorPickle("FloatStorage", 2, 0, [3, 2], [0, 1]),
      "data/0": floats([1, 2]),
    });
    expect([...(await readTorchCheckpoint(bytes)).tensors.get("w")!.data]).toEqual([1, 2, 1, 2, 1, 2]);
  });
});
