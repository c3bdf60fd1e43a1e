import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { freshStorage } from "./test-app.ts";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
export const BIN = path.join(ROOT, "apps/server/bin/lyss.js");

export type Storage = Awaited<ReturnType<typeof freshStorage>>;

export interface Server {
  child: ChildProcess;
  port: number;
  url: string;
  output: { stdout: string; stderr: string };
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A port that was free a moment ago: the server is told it, since PORT=0 would not tell us which one it took. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const result = await check();
    if (result !== undefined) return result;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export const running = new Set<ChildProcess>();

/**
 * Starts `node apps/server/bin/lyss.js start` (or another command that starts the server, such as
 * `npm start`) on a free port and waits until /health answers.
 */
export async function startServer(
  storage: Storage,
  env: Record<string, string> = {},
  command: readonly string[] = [process.execPath, BIN, "start"],
): Promise<Server> {
  const port = await freePort();
  const inherited: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "TMPDIR", "LANG"]) {
    const value = process.env[name];
    if (value !== undefined) inherited[name] = value;
  }
  const child = spawn(command[0] as string, command.slice(1), {
    cwd: ROOT,
    env: { ...inherited, ...storage.env, PORT: String(port), HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  const output = { stdout: "", stderr: "" };
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    output.stdout += chunk;
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    output.stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("exit", (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void exited.then((value) => {
    exit = value;
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/health`, async () => {
    if (exit) throw new Error(`the server exited (${JSON.stringify(exit)}) before it was ready:\n${output.stdout}\n${output.stderr}`);
    try {
      const response = await fetch(`${url}/health`);
      return response.status === 200 ? true : undefined;
    } catch {
      return undefined;
    }
  });
  return { child, port, url, output, exited };
}

/** One JSON log line of a server's stdout (pino), loosely typed for assertions. */
// biome-ignore lint/suspicious/noExplicitAny: log lines are read loosely and asserted on
export type LogLine = Record<string, any>;

const parsed = new WeakMap<Server, { offset: number; lines: LogLine[] }>();

/** The JSON log lines the server has printed so far (the first-run hint and other text are left out). */
export function logLines(server: Server): LogLine[] {
  const cache = parsed.get(server) ?? { offset: 0, lines: [] };
  parsed.set(server, cache);
  const end = server.output.stdout.lastIndexOf("\n") + 1;
  for (const text of server.output.stdout.slice(cache.offset, end).split("\n")) {
    if (!text.startsWith("{")) continue;
    try {
      cache.lines.push(JSON.parse(text) as LogLine);
    } catch {
      // Not a log line.
    }
  }
  cache.offset = Math.max(cache.offset, end);
  return cache.lines;
}

/** Waits for a log line that matches, and answers it. */
export function waitForLog(server: Server, what: string, match: (line: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> {
  return waitFor(what, () => logLines(server).find(match), timeoutMs);
}
