/**
 * Headless Chromium driven over the DevTools protocol (a WebSocket; no driver library, no downloaded browser):
 * the system's `chromium` (Debian's package) with WebGPU on. Without a GPU, Chromium's WebGPU runs on
 * SwiftShader, its CPU Vulkan implementation; `--enable-unsafe-webgpu` is what Linux builds need to expose it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const CHROMIUM_FLAGS = [
  "--headless=new",
  "--enable-unsafe-webgpu",
  "--no-first-run",
  "--no-default-browser-check",
  "--disable-extensions",
  "--remote-debugging-port=0",
];

export function findChromium(): string | null {
  return process.env.CHROMIUM ?? Bun.which("chromium") ?? Bun.which("chromium-browser") ?? Bun.which("google-chrome");
}

export interface Page {
  /** Evaluates an expression in the page, awaiting a promise, and returns its value (JSON-serialisable). */
  evaluate<T>(expression: string, timeoutMs?: number): Promise<T>;
  /** What the page printed to its console and every uncaught error, for failure messages. */
  log: string[];
  close(): Promise<void>;
}

/** The parts of DevTools protocol messages read here. */
interface RemoteObject {
  value?: unknown;
  description?: string;
}
interface ExceptionDetails {
  text: string;
  exception?: RemoteObject;
}
interface Reply {
  id?: number;
  method?: string;
  params?: { type?: string; args?: RemoteObject[]; exceptionDetails?: ExceptionDetails };
  result?: { result?: RemoteObject; exceptionDetails?: ExceptionDetails; errorText?: string };
  error?: { message: string };
}

/** Opens `url` in a new headless Chromium with a profile of its own, removed on close. */
export async function openPage(url: string): Promise<Page> {
  const binary = findChromium();
  if (!binary) throw new Error("no chromium on PATH: run `bash scripts/setup.sh` (it installs Debian's chromium)");
  const profile = mkdtempSync(join(tmpdir(), "tc-chromium-"));
  // Chromium's sandbox needs user namespaces, which root (CI, containers) may not have.
  const sandbox = process.getuid?.() === 0 ? ["--no-sandbox"] : [];
  const browser = Bun.spawn([binary, ...CHROMIUM_FLAGS, ...sandbox, `--user-data-dir=${profile}`, "about:blank"], {
    stdout: "ignore",
    stderr: "pipe",
  });
  const stop = async () => {
    browser.kill();
    await browser.exited;
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    const endpoint = await devtoolsAddress(browser.stderr);
    const target = (await (await fetch(`http://${endpoint}/json/new?about:blank`, { method: "PUT" })).json()) as {
      webSocketDebuggerUrl: string;
    };
    const page = await connect(target.webSocketDebuggerUrl, url);
    return { ...page, close: async () => (page.close(), stop()) };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Chromium prints "DevTools listening on ws://HOST:PORT/…" to stderr once it accepts connections. */
async function devtoolsAddress(stderr: ReadableStream<Uint8Array>): Promise<string> {
  const decoder = new TextDecoder();
  const reader = stderr.getReader();
  let seen = "";
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    seen += decoder.decode(chunk.value, { stream: true });
    const found = /DevTools listening on ws:\/\/([^/\s]+)\//.exec(seen);
    if (found) {
      // Keep draining stderr, or a chatty browser blocks on a full pipe.
      void (async () => {
        while (!(await reader.read()).done);
      })().catch(() => {});
      return found[1]!;
    }
  }
  throw new Error(`chromium exited before opening its DevTools port:\n${seen.slice(-2000)}`);
}

/** Attaches to a blank tab, then loads `url` in it, so that no console line of the page is missed. */
async function connect(address: string, url: string): Promise<Omit<Page, "close"> & { close(): void }> {
  const socket = new WebSocket(address);
  await new Promise((ok, fail) => {
    socket.onopen = ok;
    socket.onerror = () => fail(new Error(`cannot connect to ${address}`));
  });
  const waiting = new Map<number, (reply: Reply) => void>();
  const log: string[] = [];
  let loaded: () => void;
  const load = new Promise<void>((ok) => (loaded = ok));
  socket.onmessage = (event) => {
    const reply = JSON.parse(String(event.data)) as Reply;
    if (reply.id !== undefined) waiting.get(reply.id)?.(reply);
    else if (reply.method === "Page.loadEventFired") loaded();
    else if (reply.method === "Runtime.consoleAPICalled")
      log.push(`${reply.params?.type}: ${reply.params?.args?.map((a) => a.value ?? a.description).join(" ")}`);
    else if (reply.method === "Runtime.exceptionThrown")
      log.push(`uncaught: ${describe(reply.params?.exceptionDetails)}`);
  };
  let next = 0;
  const send = (method: string, params: object, timeoutMs: number) =>
    new Promise<NonNullable<Reply["result"]>>((ok, fail) => {
      const id = ++next;
      const timer = setTimeout(() => fail(new Error(`${method}: no answer in ${timeoutMs} ms`)), timeoutMs);
      waiting.set(id, (reply) => {
        clearTimeout(timer);
        waiting.delete(id);
        if (reply.error) fail(new Error(`${method}: ${reply.error.message}`));
        else ok(reply.result ?? {});
      });
      socket.send(JSON.stringify({ id, method, params }));
    });
  await send("Runtime.enable", {}, 10_000);
  await send("Page.enable", {}, 10_000);
  const navigation = await send("Page.navigate", { url }, 30_000);
  if (navigation.errorText) throw new Error(`chromium cannot open ${url}: ${navigation.errorText}`);
  await load;
  return {
    log,
    async evaluate<T>(expression: string, timeoutMs = 60_000): Promise<T> {
      const result = await send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true }, timeoutMs);
      if (result.exceptionDetails) throw new Error(`in the page: ${describe(result.exceptionDetails)}`);
      return result.result?.value as T;
    },
    close: () => socket.close(),
  };
}

const describe = (e?: ExceptionDetails) => e?.exception?.description ?? e?.text;
