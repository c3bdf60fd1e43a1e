import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { setMaxListeners } from "node:events";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { Agent, request } from "undici";
import type { Run, Target } from "./gateway-report.ts";
import { usesWrk, wrk } from "./wrk.ts";

/** Processes, ports and the Lyss set-up shared by the gateway benchmark and the profiler. */

export const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, "..");

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

/** Kills every process this run started and removes its temporary directories. */
export function cleanup() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  children.clear();
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/** Runs a benchmark script's main: cleans up after it, and exits non-zero when it throws. */
export async function runMain(main: () => Promise<void>): Promise<never> {
  try {
    await main();
    cleanup();
    process.exit(0);
  } catch (error) {
    console.error(error);
    cleanup();
    process.exit(1);
  }
}

/** Cleans up on exit and on signals, and stops the run when it exceeds its time limit. */
export function guard(timeLimitMs: number) {
  process.on("exit", cleanup);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      console.error(`\n${signal}: stopping`);
      cleanup();
      process.exit(130);
    });
  }
  setTimeout(() => {
    console.error(`time limit of ${timeLimitMs / 1000} s reached: stopping`);
    cleanup();
    process.exit(1);
  }, timeLimitMs).unref();
}

export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? "/tmp"), prefix));
  tempDirs.add(dir);
  return dir;
}

/** Builds the production bundle, so the run measures the current sources as `npm start` runs them. */
export function buildServer() {
  execFileSync(process.execPath, [path.join(root, "apps/server/bin/build.js")], { cwd: root, stdio: "inherit" });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The value after `--name` on the command line, or the fallback. */
export function argument(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback;
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Starts `node --import tsx <script> …args` and waits for its "listening <port>" line. */
export async function startHelper(
  script: string,
  args: string[],
  nodeArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", path.join(here, script), ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.add(child);
  const port = await new Promise<number>((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error(`${script} did not start in 20 s`)), 20_000);
    child.stdout?.on("data", (data: Buffer) => {
      text += data.toString();
      const match = /listening (\d+)/.exec(text);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once("exit", (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  return { child, port };
}

/**
 * Starts a proxy Lyss is measured against (the bare proxy, the framework floor) on the runtime Lyss
 * itself runs on: `npm start`'s Node flags and environment (`--single-threaded-gc`, `MALLOC_ARENA_MAX=2`)
 * and the collector flag Lyss sets at start (`--no-allocation-site-pretenuring`, see
 * `apps/server/src/infra/collector.ts`). With Node's defaults the bare proxy spent 35–40 % more CPU per
 * request in some runs and not in others, so the limit moved with the collector instead of the code.
 */
export function startProxy(
  script: "bare-proxy.ts" | "framework-floor.ts",
  upstreamOrigin: string,
  nodeArgs: string[] = [],
  env: Record<string, string> = {},
) {
  return startHelper(script, ["0", upstreamOrigin], [...startFlags(), "--no-allocation-site-pretenuring", ...nodeArgs], {
    ...startEnv(),
    ...env,
  });
}

/** A proxy started by `startProxy`, as a load target. */
export function proxyTarget(name: string, proxy: { child: ChildProcess; port: number }): Target {
  return { name, pid: proxy.child.pid, origin: `http://127.0.0.1:${proxy.port}`, headers: {} };
}

/**
 * Lyss as the benchmarks measure it alone: one worker on SQLite in a fresh data dir (`dirPrefix`),
 * provisioned against the upstream with the benchmark's token, as a load target.
 */
export async function startLyssTarget(
  upstreamPort: number,
  dirPrefix: string,
  options: Pick<LyssOptions, "nodeArgs" | "pipeStdout"> = {},
): Promise<{ child: ChildProcess; target: Target }> {
  const port = await freePort();
  const { child } = await startLyss(port, tempDir(dirPrefix), { ...options, env: { LYSS_WORKERS: "1" } });
  const origin = `http://127.0.0.1:${port}`;
  const { token } = await provision(origin, upstreamPort, []);
  return { child, target: { name: "lyss", pid: child.pid, origin, headers: { authorization: `Bearer ${token.key}` } } };
}

export interface LyssOptions {
  /** Extra node flags (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  env?: Record<string, string>;
  /** The checkout to run (default: this one). */
  root?: string;
  /** Pipe the server's standard output to `child.stdout` instead of this process's. */
  pipeStdout?: boolean;
}

/** The words of `npm start`'s command (the server's start script). */
function startWords(checkout: string): string[] {
  const manifest = JSON.parse(fs.readFileSync(path.join(checkout, "apps/server/package.json"), "utf8")) as { scripts?: { start?: string } };
  return (manifest.scripts?.start ?? "").split(/\s+/);
}

/** The Node flags `npm start` runs the server with (its start script's, e.g. `--single-threaded-gc`). */
export function startFlags(checkout = root): string[] {
  const words = startWords(checkout);
  return words.slice(words.indexOf("node") + 1, words.indexOf("bin/lyss.js")).filter((word) => word.startsWith("--"));
}

/** The environment `npm start` sets before Node (its start script's `NAME=value` words, e.g. `MALLOC_ARENA_MAX=2`). */
export function startEnv(checkout = root): Record<string, string> {
  const words = startWords(checkout);
  const assignments = words.slice(0, Math.max(0, words.indexOf("node"))).filter((word) => /^[A-Z_][A-Z0-9_]*=/.test(word));
  return Object.fromEntries(assignments.map((word) => [word.slice(0, word.indexOf("=")), word.slice(word.indexOf("=") + 1)]));
}

/** How a process ended after SIGTERM: its exit code or signal, and how long it took. */
export interface Stop {
  code: number | null;
  signal: NodeJS.Signals | null;
  ms: number;
}

/** Starts `node <npm start's flags> apps/server/bin/lyss.js start` on SQLite in `dir` and waits for /health. */
export async function startLyss(port: number, dir: string, options: LyssOptions = {}): Promise<{ child: ChildProcess; readyMs: number }> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LYSS_DATA_DIR: dir,
    PORT: String(port),
    HOST: "127.0.0.1",
    LOG_LEVEL: "warn",
    NODE_ENV: "production",
    ...startEnv(options.root ?? root),
    ...options.env,
  };
  for (const name of ["DATABASE_URL", "REDIS_URL", "LYSS_ADMIN_EMAIL", "LYSS_ADMIN_PASSWORD"]) {
    if (!options.env?.[name]) delete env[name];
  }
  const started = performance.now();
  const checkout = options.root ?? root;
  const child = spawn(
    process.execPath,
    [...startFlags(checkout), ...(options.nodeArgs ?? []), path.join(checkout, "apps/server/bin/lyss.js"), "start"],
    {
      cwd: checkout,
      env,
      stdio: ["ignore", options.pipeStdout ? "pipe" : "inherit", "inherit"],
    },
  );
  children.add(child);
  let exited = false;
  child.once("exit", () => {
    exited = true;
  });
  const deadline = started + 60_000;
  while (performance.now() < deadline) {
    if (exited) throw new Error("lyss exited before /health answered");
    try {
      const answer = await fetch(`http://127.0.0.1:${port}/health`);
      await answer.arrayBuffer();
      if (answer.ok) return { child, readyMs: performance.now() - started };
    } catch {
      // not listening yet
    }
    await sleep(5);
  }
  throw new Error("lyss did not answer /health within 60 s");
}

/** Stops a process with SIGTERM (SIGKILL after 20 s). */
export async function stopChild(child: ChildProcess): Promise<Stop> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode, ms: 0 };
  const exited = new Promise<Pick<Stop, "code" | "signal">>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const at = performance.now();
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const exit = await exited;
  clearTimeout(timer);
  children.delete(child);
  return { ...exit, ms: performance.now() - at };
}

/** Resident memory of a process and its children (the workers), in MiB. */
export function rssMiB(pid: number | undefined): { rss: number; hwm: number } {
  const read = (id: number) => {
    const status = fs.readFileSync(`/proc/${id}/status`, "utf8");
    const kib = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
    return { rss: kib("VmRSS") / 1024, hwm: kib("VmHWM") / 1024 };
  };
  const total = read(pid as number);
  for (const child of childPids(pid as number)) {
    const one = read(child);
    total.rss += one.rss;
    total.hwm += one.hwm;
  }
  return total;
}

/**
 * Pins a process, its threads and its child processes to `cpus` (a taskset list, "1" or "0-2"): for
 * runs that keep the targets on one core and the load generator and upstream on the others. Threads
 * and processes started later inherit it.
 */
export function pinTo(pid: number, cpus: string) {
  for (const id of [pid, ...childPids(pid)]) execFileSync("taskset", ["-a", "-p", "-c", cpus, String(id)], { stdio: "ignore" });
}

function childPids(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export async function api<T>(base: string, method: string, url: string, body: unknown, headers: Record<string, string> = {}): Promise<T> {
  const answer = await fetch(`${base}${url}`, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await answer.text();
  if (!answer.ok) throw new Error(`${method} ${url}: ${answer.status} ${text}`);
  return JSON.parse(text) as T;
}

/**
 * What the benchmark asks for: a plain answer, a stream the upstream writes in one piece, or the same
 * stream written a chunk at a time (as a model sends it).
 */
export type Shape = "plain" | "stream" | "chunked";
export const SHAPES: readonly Shape[] = ["plain", "stream", "chunked"];

/** The shapes named on the command line (`--plain`, `--stream`, `--chunked`), or `fallback` when none is. */
export function chosenShapes(fallback: readonly Shape[] = SHAPES): readonly Shape[] {
  const chosen = SHAPES.filter((shape) => process.argv.includes(`--${shape}`));
  return chosen.length ? chosen : fallback;
}

/** The chat request of a shape. */
export const shapeBody = (shape: Shape) => chatBody(shape !== "plain", shape === "chunked" ? "bench-chunked" : "bench-model");

export const chatBody = (stream: boolean, model = "bench-model") =>
  JSON.stringify({ model, messages: [{ role: "user", content: "Say something." }], stream, max_tokens: 32 });

/** The benchmark's administrator. */
const ADMIN = { email: "bench@example.com", password: "bench-password-1234" };

/**
 * Signs the benchmark's administrator in again: a full run outlasts an access token (15 minutes by
 * default), and what it reads at the end needs a fresh one.
 */
export async function signIn(base: string, tenantId: string): Promise<Record<string, string>> {
  const session = await api<{ access_token: string }>(base, "POST", "/api/v1/auth/login", ADMIN);
  return { authorization: `Bearer ${session.access_token}`, "x-tenant-id": tenantId };
}

/**
 * Loopback hosts for the upstream's slow channels (`provision` makes one "bench-slow" channel per host):
 * thousands of open streams need more upstream connections than one address's ports allow.
 */
export const SLOW_HOSTS = Array.from({ length: 10 }, (_, i) => `127.0.0.${i + 2}`);

/**
 * Opens `count` slow streams ("bench-slow": a chunk a second until the client goes) and waits (up to
 * `waitMs`) until each has its first body chunk; `close` ends them all at once, as their client.
 */
export async function openSlowStreams(target: Target, count: number, waitMs: number) {
  const agent = new Agent({ connections: count + 10, keepAliveTimeout: 5_000, pipelining: 1 });
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  let started = 0;
  let failed = 0;
  const all = Array.from({ length: count }, async () => {
    try {
      const answer = await request(`${target.origin}/v1/chat/completions`, {
        method: "POST",
        dispatcher: agent,
        signal: controller.signal,
        headers: { "content-type": "application/json", ...target.headers },
        body: chatBody(true, "bench-slow"),
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      if (answer.statusCode !== 200) {
        failed++;
        await answer.body.text();
        return;
      }
      let first = true;
      for await (const _part of answer.body) {
        if (first) started++;
        first = false;
      }
    } catch {
      // aborted at the end, or refused
    }
  });
  const deadline = performance.now() + waitMs;
  while (started + failed < count && performance.now() < deadline) await sleep(100);
  return {
    started,
    failed,
    close: async () => {
      controller.abort();
      await Promise.allSettled(all);
      await agent.close();
    },
  };
}

/**
 * Sets up a fresh Lyss: the first administrator, one channel for "bench-model" and "bench-chunked" on
 * the upstream, one "bench-slow" channel per extra loopback host, prices (so cost reservation runs) and
 * a token with a requests limit, a cost limit and rpm/tpm rate limits.
 */
export async function provision(base: string, upstreamPort: number, extraHosts: string[]) {
  const setup = await api<{ access_token: string; tenant: { id: string } }>(base, "POST", "/api/v1/auth/setup", {
    ...ADMIN,
    name: "Bench",
  });
  const auth = { authorization: `Bearer ${setup.access_token}`, "x-tenant-id": setup.tenant.id };
  const channel = (name: string, host: string, models: string[], extra: Record<string, unknown> = {}) =>
    api(
      base,
      "POST",
      "/api/v1/channels",
      { name, provider: "openai-compatible", base_url: `http://${host}:${upstreamPort}`, models, ...extra },
      auth,
    );
  await channel("bench", "127.0.0.1", ["bench-model", "bench-chunked"]);
  for (const [i, host] of extraHosts.entries()) await channel(`slow-${i}`, host, ["bench-slow"], { timeout_ms: 600_000 });
  for (const model of ["bench-model", "bench-chunked", "bench-slow"]) {
    await api(base, "PUT", "/api/v1/prices", { scope: "tenant", model, input_per_mtok: 1_000_000, output_per_mtok: 2_000_000 }, auth);
  }
  const token = await api<{ id: string; key: string }>(
    base,
    "POST",
    "/api/v1/tokens",
    {
      name: "bench",
      limits: [
        { metric: "requests", window: "total", max: 1_000_000_000 },
        { metric: "cost_micro_usd", window: "month", max: 1_000_000_000_000 },
      ],
      rate_limits: { rpm: 100_000_000, tpm: 1_000_000_000_000 },
    },
    auth,
  );
  return { auth, token };
}

/** CPU time (user + system) a process and its children have used so far, in seconds. */
export function cpuSeconds(pid: number | undefined): number {
  const read = (id: number) => {
    const fields = fs.readFileSync(`/proc/${id}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    // utime and stime are fields 14 and 15 of /proc/<pid>/stat (11 and 12 after the command name).
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  };
  let total = read(pid as number);
  for (const child of childPids(pid as number)) total += read(child);
  return total;
}

const CLOCK_TICKS = 100;

/** The load generator `drive` uses: wrk when installed (see `wrk.ts`), otherwise autocannon. */
export const driver = (): "wrk" | "autocannon" => (usesWrk() ? "wrk" : "autocannon");

/**
 * Drives POST /v1/chat/completions of a target for `duration` seconds (or for `amount` requests, with
 * autocannon), with the shape's body or another; CPU is its processes' time per answer.
 */
export async function drive(
  target: Target,
  connections: number,
  shape: Shape,
  duration: number,
  options: { body?: string; amount?: number } = {},
): Promise<Run> {
  const cpuBefore = cpuSeconds(target.pid);
  const body = options.body ?? shapeBody(shape);
  if (!options.amount && usesWrk()) {
    const result = await wrk(
      `${target.origin}/v1/chat/completions`,
      { "content-type": "application/json", ...target.headers },
      body,
      connections,
      duration,
    );
    const cpu = cpuSeconds(target.pid) - cpuBefore;
    return {
      rps: result.requests / result.seconds,
      requests: result.requests,
      p50: result.p50,
      p99: result.p99,
      cpuMicrosPerRequest: (cpu * 1e6) / Math.max(1, result.requests),
      non2xx: result.non2xx,
      errors: result.errors,
    };
  }
  const result = await autocannon({
    url: `${target.origin}/v1/chat/completions`,
    method: "POST",
    headers: { "content-type": "application/json", ...target.headers },
    body,
    connections,
    duration,
    ...(options.amount ? { amount: options.amount } : {}),
    pipelining: 1,
    timeout: 30,
  });
  const cpu = cpuSeconds(target.pid) - cpuBefore;
  return {
    rps: result.requests.average,
    requests: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    cpuMicrosPerRequest: (cpu * 1e6) / Math.max(1, result.requests.total),
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

/** How long targets are warmed up: each shape `runs` times for `seconds`. */
export interface WarmUp {
  runs: number;
  seconds: number;
}

/** Each shape twice for 5 s (see `warmUp`). */
export const DEFAULT_WARM_UP: WarmUp = { runs: 2, seconds: 5 };

/**
 * The warm-up before measured runs, not recorded: each shape `runs` times for `seconds` at 50
 * connections, on new connections each run. V8 kept optimizing Lyss's code through the first 15 s of a
 * load (one worker, streamed, 50 connections: 898 functions optimized in the first 5 s run, 124 and 88
 * in the next two 6 s runs, 14 in the fourth; its compiler threads 96, 7, 7, then 0.6 µs of CPU per
 * request), and each new set of connections deoptimized some 20 functions again the first two times
 * (code that had not yet seen a connection open or close). After a few seconds of warm-up the first
 * measured runs measured that, not the gateway at work; the bare proxy settles sooner.
 */
export async function warmUp(targets: readonly Target[], shapes: readonly Shape[], plan: WarmUp = DEFAULT_WARM_UP) {
  for (const target of targets)
    for (let run = 0; run < plan.runs; run++) for (const shape of shapes) await drive(target, 50, shape, plan.seconds);
}

/** A process's thread ids now. Taken before any load, they are V8's and libuv's helpers (every thread is named "node"). */
export const threadIds = (pid: number) => new Set(fs.readdirSync(`/proc/${pid}/task`));

/** Which thread of process `pid` `tid` is: its serving thread, a helper there before the load (`helpers`), or Lyss's usage writer (it starts with the first batch). */
export const threadKind = (pid: number, tid: string, helpers: Set<string>): "main" | "helpers" | "writer" =>
  tid === String(pid) ? "main" : helpers.has(tid) ? "helpers" : "writer";
