/**
 * A restricted unpickler: it reads the pickle opcodes that `torch.save` writes (protocol 2, and the
 * protocol-4 additions FRAME, MEMOIZE, STACK_GLOBAL, BINUNICODE8) and builds plain values. Python's
 * pickle runs any callable a file names; here a global resolves only through the caller's allow-list,
 * and any other name stops the load before a single object is built from it.
 *
 * Values: None -> null, bool, int -> number (bigint beyond 2^53), float -> number, str -> string,
 * bytes -> Uint8Array, list and tuple -> Array, dict -> Map.
 */

export class PickleError extends Error {
  override name = "PickleError";
}

/** The pickle names a Python global outside the allow-list; `global` is "module.name". */
export class UnsafePickleError extends PickleError {
  override name = "UnsafePickleError";
  constructor(readonly global: string) {
    super(
      `refusing to load: the pickle refers to the Python global "${global}", which is not on the allow-list of ` +
        `tensor and container types. Loading it in Python would call that code, so the file may execute code and is ` +
        `not loaded. If you trust its source, load it in Python and save the tensors with safetensors instead.`,
    );
  }
}

export interface UnpickleOptions {
  /**
   * The Python globals the stream may name, keyed "module.name". A function value is what REDUCE and
   * NEWOBJ call with the argument tuple; any other value (a storage type, a dtype) is used as data.
   */
  globals?: ReadonlyMap<string, unknown>;
  /** Resolves BINPERSID references (torch.save uses them for tensor storages). */
  persistentLoad?: (pid: unknown) => unknown;
}

export function unpickle(bytes: Uint8Array, { globals = new Map(), persistentLoad }: UnpickleOptions = {}): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;

  const need = (n: number) => {
    if (pos + n > bytes.length)
      fail(`the pickle ends at byte ${bytes.length}, inside an opcode's argument; the file is truncated`);
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = () => bytes[need(1)];
  const u32 = () => view.getUint32(need(4), true);
  const u64 = () => {
    const n = view.getBigUint64(need(8), true);
    if (n > BigInt(bytes.length)) fail(`a length of ${n} bytes at byte ${pos - 8} goes beyond the pickle`);
    return Number(n);
  };
  const raw = (n: number) => bytes.subarray(need(n), pos);
  const text = (n: number) => {
    const at = pos,
      b = raw(n);
    try {
      return utf8.decode(b);
    } catch {
      return fail(`the string at byte ${at} is not valid UTF-8`);
    }
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail(`a GLOBAL name at byte ${pos} has no terminating newline`);
    return text(end - pos + 1).slice(0, -1);
  };
  const pop = () => {
    if (stack.length <= (marks.at(-1) ?? 0)) fail(`an opcode at byte ${pos - 1} pops from an empty stack`);
    return stack.pop();
  };
  const top = () => {
    if (stack.length <= (marks.at(-1) ?? 0)) fail(`an opcode at byte ${pos - 1} reads an empty stack`);
    return stack[stack.length - 1];
  };
  const popMark = () => {
    const m = marks.pop();
    if (m === undefined) fail(`an opcode at byte ${pos - 1} needs a MARK that is not there`);
    return stack.splice(m);
  };
  const resolve = (module: string, name: string) => {
    const key = `${module}.${name}`;
    if (!globals.has(key)) throw new UnsafePickleError(key);
    return globals.get(key);
  };
  const call = (callable: unknown, args: unknown, op: string) => {
    if (typeof callable !== "function")
      fail(`${op} at byte ${pos - 1} calls something that is not an allowed callable`);
    if (!Array.isArray(args)) fail(`${op} at byte ${pos - 1} has arguments that are not a tuple`);
    return callable(args);
  };
  const dictOf = (target: unknown, op: string) => {
    if (!(target instanceof Map)) fail(`${op} at byte ${pos - 1} targets something that is not a dict`);
    return target;
  };
  const listOf = (target: unknown, op: string) => {
    if (!Array.isArray(target)) fail(`${op} at byte ${pos - 1} targets something that is not a list`);
    return target;
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80:
        u8();
        break; // PROTO
      case 0x95:
        need(8);
        break; // FRAME: a length hint for buffered readers; we hold the whole stream.
      case 0x2e: {
        // STOP
        const result = pop();
        if (stack.length || marks.length) fail(`STOP at byte ${pos - 1} leaves values on the stack`);
        return result;
      }
      case 0x28:
        marks.push(stack.length);
        break; // MARK
      case 0x7d:
        stack.push(new Map());
        break; // EMPTY_DICT
      case 0x5d:
        stack.push([]);
        break; // EMPTY_LIST
      case 0x29:
        stack.push([]);
        break; // EMPTY_TUPLE
      case 0x74:
        stack.push(popMark());
        break; // TUPLE
      case 0x85:
        stack.push([pop()]);
        break; // TUPLE1
      case 0x86: {
        const b = pop();
        stack.push([pop(), b]);
        break;
      } // TUPLE2
      case 0x87: {
        const c = pop(),
          b = pop();
        stack.push([pop(), b, c]);
        break;
      } // TUPLE3
      case 0x4a:
        stack.push(view.getInt32(need(4), true));
        break; // BININT
      case 0x4b:
        stack.push(u8());
        break; // BININT1
      case 0x4d:
        stack.push(view.getUint16(need(2), true));
        break; // BININT2
      case 0x8a:
        stack.push(littleEndianSigned(raw(u8())));
        break; // LONG1
      case 0x47:
        stack.push(view.getFloat64(need(8), false));
        break; // BINFLOAT is big-endian.
      case 0x8c:
        stack.push(text(u8()));
        break; // SHORT_BINUNICODE
      case 0x58:
        stack.push(text(u32()));
        break; // BINUNICODE
      case 0x8d:
        stack.push(text(u64()));
        break; // BINUNICODE8
      case 0x55:
        stack.push(text(u8()));
        break; // SHORT_BINSTRING (Python 2 str)
      case 0x54:
        stack.push(text(u32()));
        break; // BINSTRING (Python 2 str)
      case 0x43:
        stack.push(raw(u8()).slice());
        break; // SHORT_BINBYTES
      case 0x42:
        stack.push(raw(u32()).slice());
        break; // BINBYTES
      case 0x4e:
        stack.push(null);
        break; // NONE
      case 0x88:
        stack.push(true);
        break; // NEWTRUE
      case 0x89:
        stack.push(false);
        break; // NEWFALSE
      case 0x71:
        memo.set(u8(), top());
        break; // BINPUT
      case 0x72:
        memo.set(u32(), top());
        break; // LONG_BINPUT
      case 0x94:
        memo.set(memo.size, top());
        break; // MEMOIZE
      case 0x68:
      case 0x6a: {
        // BINGET, LONG_BINGET
        const i = op === 0x68 ? u8() : u32();
        if (!memo.has(i)) fail(`memo entry ${i} is read at byte ${pos} before it is written`);
        stack.push(memo.get(i));
        break;
      }
      case 0x73: {
        const v = pop(),
          k = pop();
        dictOf(top(), "SETITEM").set(k, v);
        break;
      } // SETITEM
      case 0x75: {
        // SETITEMS
        const items = popMark();
        if (items.length % 2) fail(`SETITEMS at byte ${pos - 1} has an odd number of items`);
        const d = dictOf(top(), "SETITEMS");
        for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
        break;
      }
      case 0x61: {
        const v = pop();
        listOf(top(), "APPEND").push(v);
        break;
      } // APPEND
      case 0x65: {
        // APPENDS
        const items = popMark();
        const l = listOf(top(), "APPENDS");
        for (const v of items) l.push(v);
        break;
      }
      case 0x63: {
        const module = line();
        stack.push(resolve(module, line()));
        break;
      } // GLOBAL
      case 0x93: {
        // STACK_GLOBAL
        const name = pop(),
          module = pop();
        if (typeof module !== "string" || typeof name !== "string")
          fail(`STACK_GLOBAL at byte ${pos - 1} needs two strings`);
        stack.push(resolve(module, name));
        break;
      }
      case 0x52: {
        const args = pop();
        stack.push(call(pop(), args, "REDUCE"));
        break;
      } // REDUCE
      case 0x81: {
        const args = pop();
        stack.push(call(pop(), args, "NEWOBJ"));
        break;
      } // NEWOBJ
      // BUILD sets attributes (such as a state dict's `_metadata`) or calls __setstate__; the allowed types
      // carry all their content in constructor arguments and items, so the state is dropped, never run.
      case 0x62:
        pop();
        top();
        break;
      case 0x51: {
        // BINPERSID
        if (!persistentLoad)
          fail(`the pickle refers to external data (BINPERSID at byte ${pos - 1}), which this reader does not provide`);
        stack.push(persistentLoad(pop()));
        break;
      }
      default:
        fail(
          `opcode 0x${op.toString(16).padStart(2, "0")} at byte ${pos - 1} is not one torch.save writes; this reader does not support it`,
        );
    }
  }
}

/** LONG1's payload: a little-endian two's-complement integer of any length. */
function littleEndianSigned(b: Uint8Array): number | bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]);
  if (b.length && b[b.length - 1] & 0x80) n -= 1n << BigInt(8 * b.length);
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

function fail(message: string): never {
  throw new PickleError(`pickle: ${message}`);
}
