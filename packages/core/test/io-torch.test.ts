import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { unzipSync, zipSync } from "fflate";
import { readTorchCheckpoint, stripPrefix, TorchCheckpointError } from "../src/io/index.ts";
import { PickleError, unpickle, UnsafePickleError } from "../src/internal.ts";
import { floats, global, int, pickle, tensorPickle, u32 } from "./io-builders.ts";

// Fixtures come from scripts/fixtures/io_fixtures.py (torch.save and pickle in Debian's torch 1.13).
const fixture = (name: string) => new Uint8Array(readFileSync(join(import.meta.dir, "fixtures/io", name)));
const expected = JSON.parse(readFileSync(join(import.meta.dir, "fixtures/io/expected.json"), "utf8"));

type Expected = { dtype: string; shape: number[]; values: (number | string)[] };
const decode = (v: number | string) =>
  v === "nan" ? NaN : v === "inf" ? Infinity : v === "-inf" ? -Infinity : (v as number);

/** Bit-exact comparison: NaN matches NaN, and -0 must stay -0. */
function expectTensor(
  actual: { data: Float32Array; shape: number[]; dtype: string } | undefined,
  want: Expected,
  name: string,
) {
  expect(actual, name).toBeDefined();
  expect(actual!.shape, name).toEqual(want.shape);
  expect(actual!.dtype, name).toBe(want.dtype);
  expect(actual!.data.length, name).toBe(want.values.length);
  want.values.forEach((v, i) => {
    if (!Object.is(actual!.data[i], decode(v))) throw new Error(`${name}[${i}]: got ${actual!.data[i]}, expected ${v}`);
  });
}

/** The unpickled value in the tagged JSON form the fixture script writes (dicts as entry lists). */
function tagged(v: unknown): unknown {
  if (v instanceof Map) return { dict: [...v].map(([k, x]) => [tagged(k), tagged(x)]) };
  if (v instanceof Uint8Array) return { bytes: [...v] };
  if (typeof v === "bigint") return { int: v.toString() };
  if (Array.isArray(v)) return v.map(tagged);
  return v;
}

const enc = new TextEncoder();

// A real zip writer's archive (fflate), beside io-builders' byte-level one.
const archive = (files: Record<string, Uint8Array | string>) =>
  zipSync(
    Object.fromEntries(
      Object.entries(files).map(([k, v]) => [`archive/${k}`, typeof v === "string" ? enc.encode(v) : v]),
    ),
    { level: 0 },
  );

describe("torch.save zip checkpoints", () => {
  const { tensors: want, skipped: wantSkipped, integers } = expected.checkpoint;

  for (const file of ["checkpoint.pt", "checkpoint-p4.pt"]) {
    test(`${file}: every float tensor matches PyTorch, integers are skipped and reported`, async () => {
      const { tensors, skipped } = await readTorchCheckpoint(fixture(file));
      expect([...tensors.keys()]).toEqual(Object.keys(want));
      for (const [name, w] of Object.entries(want)) expectTensor(tensors.get(name), w as Expected, name);
      expect(skipped).toEqual(wantSkipped);
    });
  }

  test("integers: true reads int64 tensors as float32", async () => {
    const { tensors, skipped } = await readTorchCheckpoint(fixture("checkpoint.pt"), { integers: true });
    expect(skipped).toEqual([]);
    for (const [name, w] of Object.entries(integers)) expectTensor(tensors.get(name), w as Expected, name);
  });

  test("views read through their strides; tensors sharing a storage see the same values", async () => {
    const { tensors } = await readTorchCheckpoint(fixture("checkpoint.pt"));
    expect([...tensors.get("transposed")!.data]).toEqual([0, 2, 4, 0.5, 2.5, 4.5, 1, 3, 5, 1.5, 3.5, 5.5]);
    expect([...tensors.get("expanded")!.data]).toEqual([1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
    const head = tensors.get("shared.head")!.data,
      tail = tensors.get("shared.tail")!.data;
    expect([...tail.subarray(0, 2)]).toEqual([...head.subarray(4, 6)]);
  });

  test("a names filter loads only the chosen tensors", async () => {
    const { tensors, skipped } = await readTorchCheckpoint(fixture("checkpoint.pt"), {
      names: (n) => n.startsWith("nested.") || n === "position_ids",
    });
    expect([...tensors.keys()]).toEqual(["nested.inner.w", "nested.list.0", "nested.list.1"]);
    expect(skipped).toEqual(["position_ids"]);
  });

  test("stripPrefix picks a sub-dict and renames it (state_dict., DDP's module.)", async () => {
    const { tensors } = await readTorchCheckpoint(fixture("checkpoint.pt"));
    expect([...stripPrefix(tensors, "nested.").keys()]).toEqual(["inner.w", "list.0", "list.1"]);
    const ddp = new Map([
      ["module.fc.weight", 1],
      ["module.fc.bias", 2],
    ]);
    expect([...stripPrefix(ddp, "module.")]).toEqual([
      ["fc.weight", 1],
      ["fc.bias", 2],
    ]);
  });

  test("a ZIP64 archive with deflated entries, and a path instead of bytes, give the same tensors", async () => {
    const plain = (c: { tensors: Map<string, { data: Float32Array; shape: number[] }> }) =>
      [...c.tensors].map(([k, t]) => [k, t.shape, Array.from(t.data)]);
    const reference = plain(await readTorchCheckpoint(fixture("checkpoint.pt")));
    expect(plain(await readTorchCheckpoint(fixture("checkpoint-zip64.pt")))).toEqual(reference);
    expect(plain(await readTorchCheckpoint(join(import.meta.dir, "fixtures/io/checkpoint.pt")))).toEqual(reference);
  });

  test("big-endian storages (byteorder 'big') are swapped", async () => {
    const bytes = archive({
      "data.pkl": tensorPickle("FloatStorage", 3, 0, [3], [1]),
      byteorder: "big",
      "data/0": floats([1.5, -2, 3], false),
    });
    expect([...(await readTorchCheckpoint(bytes)).tensors.get("w")!.data]).toEqual([1.5, -2, 3]);
  });

  test("a pickle that refers to itself does not hang the flattening", async () => {
    const selfList = pickle(0x5d, 0x71, 0, 0x68, 0, 0x61);
    expect((await readTorchCheckpoint(archive({ "data.pkl": selfList }))).tensors.size).toBe(0);
  });
});

describe("refusals say what is wrong and what to do", () => {
  test("a pickle naming os.system is refused, naming the global, before anything is built", async () => {
    let error: unknown;
    try {
      await readTorchCheckpoint(fixture("malicious.pth"));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TorchCheckpointError);
    expect((error as Error).cause).toBeInstanceOf(UnsafePickleError);
    expect(((error as Error).cause as UnsafePickleError).global).toBe("os.system");
    expect((error as Error).message).toMatch(
      /refers to the Python global "os.system".*may execute code and is not loaded/,
    );
  });

  test("errors from a path name the file, file-system ones included", async () => {
    const path = join(import.meta.dir, "fixtures/io/legacy.pt");
    await expect(readTorchCheckpoint(path)).rejects.toThrow(
      `torch checkpoint ${path}: this is a legacy PyTorch checkpoint`,
    );
    for (const where of [join(import.meta.dir, "fixtures/io/missing.pt"), join(import.meta.dir, "fixtures/io")]) {
      await expect(readTorchCheckpoint(where)).rejects.toThrow(TorchCheckpointError);
      await expect(readTorchCheckpoint(where)).rejects.toThrow(`torch checkpoint ${where}: cannot read the file (`);
    }
  });

  test("legacy formats are refused with the way to convert them", async () => {
    await expect(readTorchCheckpoint(fixture("legacy-tar.pt"))).rejects.toThrow(
      /legacy tar-format PyTorch checkpoint.*re-save it with torch >= 1.6/,
    );
    await expect(readTorchCheckpoint(fixture("legacy.pt"))).rejects.toThrow(
      /legacy PyTorch checkpoint \(a bare pickle.*re-save it with torch >= 1.6/,
    );
  });

  const good = unzipSync(fixture("checkpoint.pt"));
  const cases: [string, Uint8Array, RegExp][] = [
    ["not a checkpoint at all", enc.encode("hello, world"), /not a PyTorch checkpoint: it is neither a zip archive/],
    ["a damaged zip", fixture("checkpoint.pt").slice(0, 3000), /the zip archive is damaged/],
    [
      "a zip without data.pkl",
      zipSync({ "readme.txt": enc.encode("hi") }),
      /the zip archive has no <archive>\/data.pkl \(it holds readme.txt/,
    ],
    [
      "a missing storage",
      zipSync(Object.fromEntries(Object.entries(good).filter(([k]) => k !== "archive/data/0"))),
      /uses storage 0, but the archive has no archive\/data\/0/,
    ],
    [
      "a storage of the wrong size",
      archive({ "data.pkl": tensorPickle("FloatStorage", 3, 0, [2], [1]), "data/0": floats([1, 2]) }),
      /storage 0 holds 8 bytes, but the pickle says 3 F32 elements/,
    ],
    [
      "a view beyond its storage",
      archive({ "data.pkl": tensorPickle("FloatStorage", 2, 1, [2], [1]), "data/0": floats([1, 2]) }),
      /tensor "w" reads element 2 of storage 0, which has 2/,
    ],
    [
      "malformed rebuild arguments",
      archive({ "data.pkl": tensorPickle("FloatStorage", 2, 0, [2], []), "data/0": floats([1, 2]) }),
      /a tensor's rebuild arguments are malformed/,
    ],
    [
      "an unknown byte order",
      archive({ "data.pkl": pickle(0x4e), byteorder: "middle" }),
      /archive\/byteorder says "middle"/,
    ],
  ];
  for (const [what, bytes, message] of cases) {
    test(what, async () => {
      await expect(readTorchCheckpoint(bytes)).rejects.toThrow(TorchCheckpointError);
      await expect(readTorchCheckpoint(bytes)).rejects.toThrow(message);
    });
  }
});

describe("the restricted unpickler", () => {
  for (const protocol of ["p2", "p4"]) {
    test(`builds Python's values from a protocol-${protocol[1]} pickle`, () => {
      expect(tagged(unpickle(fixture(`values-${protocol}.pkl`)))).toEqual(expected[`values-${protocol}`]);
    });
  }

  test("APPEND, NEWOBJ, BINUNICODE8 and Python 2 strings", () => {
    const bytes = pickle(
      0x5d,
      int(1),
      0x61,
      0x55,
      2,
      ...enc.encode("hi"),
      0x61,
      0x54,
      ...u32(2),
      ...enc.encode("ok"),
      0x61,
      0x8d,
      3,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      ...enc.encode("abc"),
      0x61,
      global("m", "f"),
      0x28,
      int(4),
      0x74,
      0x81,
      0x61,
    );
    expect(unpickle(bytes, { globals: new Map([["m.f", ([x]: unknown[]) => (x as number) * 10]]) })).toEqual([
      1,
      "hi",
      "ok",
      "abc",
      40,
    ]);
  });

  const refusals: [string, Uint8Array, string][] = [
    ["GLOBAL", pickle(global("__builtin__", "getattr")), "__builtin__.getattr"],
    ["STACK_GLOBAL", pickle(0x8c, 8, ...enc.encode("builtins"), 0x8c, 4, ...enc.encode("eval"), 0x93), "builtins.eval"],
  ];
  for (const [op, bytes, name] of refusals) {
    test(`${op} outside the allow-list is refused: ${name}`, () => {
      expect(() => unpickle(bytes)).toThrow(UnsafePickleError);
      expect(() => unpickle(bytes)).toThrow(`the Python global "${name}"`);
    });
  }

  const malformed: [string, Uint8Array, RegExp][] = [
    ["a truncated stream", fixture("values-p2.pkl").slice(0, 100), /the pickle ends at byte 100.*truncated/],
    [
      "an opcode torch.save does not write",
      pickle(0x49, ...enc.encode("1\n")),
      /opcode 0x49 at byte 2 is not one torch.save writes/,
    ],
    ["a memo read before its write", pickle(0x68, 9), /memo entry 9 is read/],
    [
      "REDUCE on a value that is not callable",
      pickle(global("m", "v"), 0x29, 0x52),
      /REDUCE at byte \d+ calls something that is not an allowed callable/,
    ],
    ["a persistent id with no loader", pickle(0x4e, 0x51), /refers to external data/],
    ["values left on the stack", pickle(0x4e, 0x4e), /STOP at byte 4 leaves values on the stack/],
  ];
  for (const [what, bytes, message] of malformed) {
    test(what, () => {
      expect(() => unpickle(bytes, { globals: new Map([["m.v", 5]]) })).toThrow(PickleError);
      expect(() => unpickle(bytes, { globals: new Map([["m.v", 5]]) })).toThrow(message);
    });
  }
});
