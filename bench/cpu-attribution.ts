import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { SourceMapConsumer } from "source-map-js";
import type { Target } from "./gateway-report.ts";
import {
  argument,
  buildServer,
  chosenShapes,
  DEFAULT_WARM_UP,
  drive,
  guard,
  proxyTarget,
  root,
  runMain,
  type Shape,
  startHelper,
  startLyssTarget,
  startProxy,
  tempDir,
  threadIds,
  threadKind,
  warmUp,
} from "./harness.ts";
import { callerOf, type Frame, jitNames, readSamples } from "./perf-samples.ts";

/**
 * Where each target's CPU time per request goes, by thread and by what runs: the kernel, V8's
 * collector, its inline caches and other builtins, its runtime, Node's C++ and JavaScript, and each
 * npm package and Lyss module (JavaScript of the production bundle placed through its source maps).
 * The bare proxy and Lyss (one worker, SQLite) run with `--perf-basic-prof`; Linux's `perf` samples
 * each one's threads on the CPU clock while the load runs (targets interleaved, rounds repeated), so
 * the figures are time on this machine, cache misses and all, where `bench/instructions.ts` counts
 * instructions. Needs `perf` (Debian: `apt-get install linux-perf`). Code made where freed code was
 * leaves two lines for one address in `--perf-basic-prof`'s map, and perf may answer the older: JIT
 * code is named here by the map as it was when each recording stopped, the newest line winning
 * (`jitNames`). With `--against floor` the framework floor (`bench/framework-floor.ts`) stands in for
 * the bare proxy: what Lyss's own work adds over the same framework, validator and upstream client.
 *
 * With `--callers` perf records call graphs too, and a third table puts each sample of the serving
 * thread to the JavaScript function that ran it or called what ran (the innermost JavaScript frame of
 * its stack): a function's own code, what TurboFan inlined into it, and the builtins, V8 runtime and
 * native code it called, which the tables by what runs count apart. Comparing a shape's table with the
 * other shape's tells which functions a stream adds.
 *
 *   npx tsx bench/cpu-attribution.ts [--seconds 8] [--rounds 2] [--connections 50] [--plain | --stream | --chunked] [--top 25] [--against bare|floor] [--callers]
 */

const seconds = Number(argument("--seconds", "8"));
const rounds = Number(argument("--rounds", "2"));
const connections = Number(argument("--connections", "50"));
const top = Number(argument("--top", "25"));
const byCaller = process.argv.includes("--callers");
/** What Lyss is measured against, and its name in the tables. */
const BASELINES = {
  bare: { script: "bare-proxy.ts", title: "bare proxy" },
  floor: { script: "framework-floor.ts", title: "framework floor" },
} as const;
const BASE = argument("--against", "bare") as keyof typeof BASELINES;
if (!(BASE in BASELINES)) throw new Error("--against takes bare or floor");
const shapes = chosenShapes(["plain", "stream"]);
/** Samples per second and thread. */
const FREQUENCY = 999;
/** Where perf puts JIT code: the map V8 writes with `--perf-basic-prof`. */
const JIT_DSO = /\/perf-\d+\.map$/;

guard(30 * 60_000);

/** What a sample's function is, for the tables. */
function categoryOf(symbol: string, dso: string, source: string | undefined): string {
  if (dso.includes("kernel")) return "kernel";
  if (symbol.startsWith("JS:")) {
    if (symbol.includes("RegExp:")) return "JS regular expressions";
    if (!source) return "JS other";
    return source.startsWith("node:") ? "JS Node internals" : packageOf(source);
  }
  if (symbol.startsWith("Builtins_")) return /IC/.test(symbol) ? "V8 inline caches" : "V8 builtins";
  if (/Scaveng|Marking|Sweep|Heap::|Evacuat|GCTracer|Collector|MemoryAllocator/.test(symbol)) return "V8 collector";
  if (symbol.startsWith("v8::") || symbol.startsWith("Runtime_")) return "V8 runtime";
  if (symbol.startsWith("node::")) return "Node C++";
  if (/^uv_|^uv__/.test(symbol)) return "libuv";
  if (dso.includes("better_sqlite3") || /^sqlite3|^Binder|^Data::|^Statement/.test(symbol)) return "SQLite and better-sqlite3";
  if (dso.includes("libc")) return /malloc|free|unlink_chunk|consolidate|realloc|calloc/.test(symbol) ? "libc malloc" : "libc other";
  return "other native";
}

/** The package of a source file (its path under node_modules), or Lyss's own part. */
function packageOf(source: string): string {
  if (source.startsWith("packages/llm")) return "lyss llm (providers)";
  const lyss = /^apps\/server\/src\/(modules\/[^/]+|[^/]+)/.exec(source);
  if (lyss) return `lyss ${(lyss[1] as string).replace(/^modules\//, "").replace(/\.ts(:\d+)?$/, "")}`;
  const module = /^((?:@[^/]+\/)?[^/:]+)/.exec(source);
  return module ? `package ${module[1]}` : "JS other";
}

/** Where a place in the production bundle comes from, by its source maps: its source file and line. */
function bundleSources() {
  const consumers = new Map<string, SourceMapConsumer | null>();
  const cache = new Map<string, string | undefined>();
  return (file: string, line: number, column: number): string | undefined => {
    const key = `${file}:${line}:${column}`;
    if (cache.has(key)) return cache.get(key);
    let consumer = consumers.get(file);
    if (consumer === undefined) {
      const map = `${file}.map`;
      consumer = fs.existsSync(map) ? new SourceMapConsumer(JSON.parse(fs.readFileSync(map, "utf8"))) : null;
      consumers.set(file, consumer);
    }
    const position = consumer?.originalPositionFor({ line, column });
    const source = position?.source
      ? `${position.source.replace(/^(?:\.\.\/)+/, "").replace(/^src\//, "apps/server/src/")}:${position.line}`
      : undefined;
    cache.set(key, source);
    return source;
  };
}

/**
 * A JavaScript function's source file and line (through the source maps for the production bundle),
 * so that a library's function is named alike in the bare proxy (from node_modules) and in Lyss (bundled).
 */
function sourceOf(symbol: string, sources: ReturnType<typeof bundleSources>): string | undefined {
  const at = /^(JS:\S*)(?: (.*))? (\S+):(\d+):(\d+)$/.exec(symbol);
  if (!at) return undefined;
  const file = (at[3] as string).replace(/^file:\/\//, "");
  const source = /\/apps\/server\/dist\/[\w-]+\.js$/.test(file) ? sources(file, Number(at[4]), Number(at[5]) - 1) : `${file}:${at[4]}`;
  return source?.replace(/^.*?node_modules\//, "").replace(/^.*?\/(apps\/server\/src|packages\/)/, "$1");
}

interface Attribution {
  requests: number;
  /** Samples by thread kind, by category, by symbol and (with `--callers`) by calling JavaScript function (main thread). */
  threads: Map<string, number>;
  categories: Map<string, number>;
  symbols: Map<string, number>;
  callers: Map<string, number>;
}

const emptyAttribution = (): Attribution => ({
  requests: 0,
  threads: new Map(),
  categories: new Map(),
  symbols: new Map(),
  callers: new Map(),
});
const bump = (map: Map<string, number>, key: string, by = 1) => map.set(key, (map.get(key) ?? 0) + by);

/** How the tables name each kind of thread. */
const THREAD_LABEL = { main: "main", helpers: "V8 and libuv helpers", writer: "usage writer" } as const;

/** Samples a process on the CPU clock until `stop` is called; answers the file perf wrote. */
function record(pid: number, file: string): { stop: () => Promise<void> } {
  const graphs = byCaller ? ["-g"] : [];
  const perf: ChildProcess = spawn(
    "perf",
    ["record", "-q", ...graphs, "-e", "cpu-clock", "-F", String(FREQUENCY), "-p", String(pid), "-o", file],
    { stdio: "ignore" },
  );
  return {
    stop: () =>
      new Promise((resolve) => {
        perf.once("exit", () => resolve());
        perf.kill("SIGINT");
      }),
  };
}

/** Whether a missing map was said already. */
let warnedNoMap = false;

/**
 * JIT code's names by the target's map as it stands (see `jitNames`). Without a map (V8 wrote none) the
 * samples keep perf's own names, which may name code that ran at an address earlier: said once.
 */
function jitNamesOf(pid: number): (ip: number) => string | undefined {
  const map = `/tmp/perf-${pid}.map`;
  if (fs.existsSync(map)) return jitNames(fs.readFileSync(map, "utf8"));
  if (!warnedNoMap) console.warn(`${map} is missing: JIT code keeps perf's names, which can be those of older code at the address`);
  warnedNoMap = true;
  return () => undefined;
}

/** A JavaScript frame's name as the tables give it (its tier mark, name and source place), or perf's symbol. */
function nameOf(symbol: string, sources: ReturnType<typeof bundleSources>): { name: string; source: string | undefined } {
  const source = symbol.startsWith("JS:") ? sourceOf(symbol, sources) : undefined;
  return { name: source ? `${symbol.split(" ")[0]} ${source}` : symbol, source };
}

/** Adds one recording's samples, read from `perf script` (`tid ip symbol (dso)`, with the stack's lines under call graphs). */
async function addSamples(
  into: Attribution,
  file: string,
  pid: number,
  helpers: Set<string>,
  sources: ReturnType<typeof bundleSources>,
  jit: (ip: number) => string | undefined,
) {
  // JIT code named by the map as it was when the recording stopped (see jitNames), not by perf's pick.
  const named = (frame: Frame): Frame => {
    const symbol = JIT_DSO.test(frame.dso) ? jit(frame.ip) : undefined;
    return symbol === undefined ? frame : { ...frame, symbol };
  };
  const listing = `${file}.txt`;
  const out = fs.openSync(listing, "w");
  try {
    execFileSync("perf", ["script", "-i", file, "-F", "tid,ip,sym,dso"], { stdio: ["ignore", out, "ignore"] });
  } finally {
    fs.closeSync(out);
  }
  try {
    for await (const read of readSamples(listing)) {
      const sample = { tid: read.tid, frames: read.frames.map(named) };
      const thread = THREAD_LABEL[threadKind(pid, sample.tid, helpers)];
      bump(into.threads, thread);
      if (thread !== "main") continue;
      const { symbol, dso } = sample.frames[0] as Frame;
      const { name, source } = nameOf(symbol, sources);
      bump(into.categories, categoryOf(symbol, dso, source));
      // JavaScript by its tier mark, name and source place, so the same function matches in both targets.
      bump(into.symbols, name || `[${dso}]`);
      if (!byCaller) continue;
      const caller = callerOf(sample);
      const kernel = dso.includes("kernel") ? " (in the kernel)" : "";
      bump(into.callers, caller ? `${nameOf(caller.symbol, sources).name}${kernel}` : `(no JavaScript)${kernel}`);
    }
  } finally {
    fs.rmSync(listing, { force: true });
  }
}

const micros = (samples: number, requests: number) => (samples / FREQUENCY / Math.max(1, requests)) * 1e6;
const format = (value: number) => value.toFixed(1);

interface Row {
  name: string;
  base: number;
  lyss: number;
}

/** Each name of either count with its µs per request in both targets, in the order asked. */
function rows(
  baseCounts: Map<string, number>,
  lyssCounts: Map<string, number>,
  base: Attribution,
  lyss: Attribution,
  order: (x: Row, y: Row) => number,
): Row[] {
  return [...new Set([...baseCounts.keys(), ...lyssCounts.keys()])]
    .map((name) => ({
      name,
      base: micros(baseCounts.get(name) ?? 0, base.requests),
      lyss: micros(lyssCounts.get(name) ?? 0, lyss.requests),
    }))
    .sort(order);
}

const functionRows = (list: Row[]) =>
  list.map(
    (row) =>
      `| \`${row.name.replace(/\|/g, "\\|").slice(0, 110)}\` | ${row.base.toFixed(2)} | ${row.lyss.toFixed(2)} | ${(row.lyss - row.base).toFixed(2)} |`,
  );

function report(shape: Shape, base: Attribution, lyss: Attribution): string {
  const lines = [`### ${shape}: CPU µs per request (${base.requests} ${BASE} and ${lyss.requests} Lyss requests sampled)`, ""];
  const total = (attribution: Attribution) => [...attribution.threads.values()].reduce((sum, value) => sum + value, 0);
  lines.push(`| thread | ${BASE} | lyss | lyss − ${BASE} |`, "|---|---:|---:|---:|");
  const threads = new Set([...base.threads.keys(), ...lyss.threads.keys()]);
  for (const thread of [THREAD_LABEL.main, THREAD_LABEL.writer, THREAD_LABEL.helpers].filter((name) => threads.has(name))) {
    const b = micros(base.threads.get(thread) ?? 0, base.requests);
    const l = micros(lyss.threads.get(thread) ?? 0, lyss.requests);
    lines.push(`| ${thread} | ${format(b)} | ${format(l)} | ${format(l - b)} |`);
  }
  const b = micros(total(base), base.requests);
  const l = micros(total(lyss), lyss.requests);
  lines.push(`| all | ${format(b)} | ${format(l)} | ${format(l - b)} (${(l / b).toFixed(2)}×) |`, "");
  lines.push("Serving thread, by what runs:", "", `| what | ${BASE} | lyss | lyss − ${BASE} |`, "|---|---:|---:|---:|");
  for (const row of rows(base.categories, lyss.categories, base, lyss, (x, y) => y.lyss - x.lyss)) {
    if (row.lyss >= 0.1 || row.base >= 0.1) {
      lines.push(`| ${row.name} | ${format(row.base)} | ${format(row.lyss)} | ${format(row.lyss - row.base)} |`);
    }
  }
  lines.push(
    "",
    `Serving thread, the ${top} functions Lyss spends most more on than the ${BASELINES[BASE].title}:`,
    "",
    `| function | ${BASE} | lyss | lyss − ${BASE} |`,
    "|---|---:|---:|---:|",
    ...functionRows(rows(base.symbols, lyss.symbols, base, lyss, (x, y) => y.lyss - y.base - (x.lyss - x.base)).slice(0, top)),
  );
  if (byCaller) {
    lines.push(
      "",
      `Serving thread by the JavaScript function that ran or called what ran (with what it inlined and the builtins, runtime and native code it called), the ${top} Lyss spends most on:`,
      "",
      `| function | ${BASE} | lyss | lyss − ${BASE} |`,
      "|---|---:|---:|---:|",
      ...functionRows(rows(base.callers, lyss.callers, base, lyss, (x, y) => y.lyss - x.lyss).slice(0, top)),
    );
  }
  return lines.join("\n");
}

async function main() {
  try {
    execFileSync("perf", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error("perf is not installed (Debian: apt-get install linux-perf)");
  }
  buildServer();
  const upstream = await startHelper("fake-upstream.ts", ["0"]);
  const base = proxyTarget(BASE, await startProxy(BASELINES[BASE].script, `http://127.0.0.1:${upstream.port}`, ["--perf-basic-prof"]));
  const { target: lyss } = await startLyssTarget(upstream.port, "lyss-attribution-", { nodeArgs: ["--perf-basic-prof"] });
  const targets: Target[] = [base, lyss];
  const helpers = new Map(targets.map((target) => [target.name, threadIds(target.pid as number)]));
  await warmUp(targets, shapes);
  const sources = bundleSources();
  const dir = tempDir("lyss-perf-");
  const sections: string[] = [];
  try {
    for (const shape of shapes) {
      const results = new Map(targets.map((target) => [target.name, emptyAttribution()]));
      for (let round = 0; round < rounds; round++) {
        for (const target of round % 2 === 0 ? targets : [...targets].reverse()) {
          const pid = target.pid as number;
          const file = path.join(dir, `${target.name}-${shape}-${round}.data`);
          const recording = record(pid, file);
          const run = await drive(target, connections, shape, seconds);
          await recording.stop();
          const jit = jitNamesOf(pid);
          const into = results.get(target.name) as Attribution;
          into.requests += run.requests;
          await addSamples(into, file, pid, helpers.get(target.name) as Set<string>, sources, jit);
          console.log(`${shape} round ${round + 1}: ${target.name} ${Math.round(run.rps)} req/s`);
        }
      }
      sections.push(report(shape, results.get(BASE) as Attribution, results.get("lyss") as Attribution));
    }
  } finally {
    // `--perf-basic-prof` also leaves V8's log of each process in its working directory.
    for (const target of targets) {
      fs.rmSync(`/tmp/perf-${target.pid}.map`, { force: true });
      for (const file of fs.readdirSync(root)) {
        if (file.startsWith("isolate-") && file.endsWith(`-${target.pid}-v8.log`)) fs.rmSync(path.join(root, file), { force: true });
      }
    }
  }
  console.log(
    [
      "",
      `## CPU time by thread and by what runs (${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC)`,
      "",
      `- Command: \`npx tsx bench/cpu-attribution.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(" ")}` : ""}\` (in ${path.relative(process.cwd(), root) || "."})`,
      `- ${connections} connections (wrk), ${rounds} rounds of ${seconds} s per target and shape after a warm-up of ${DEFAULT_WARM_UP.runs} × ${DEFAULT_WARM_UP.seconds} s each, targets interleaved; \`perf record -e cpu-clock -F ${FREQUENCY}${byCaller ? " -g" : ""}\` on each target's process during its runs; µs per request are samples ÷ ${FREQUENCY} ÷ requests answered.`,
      "",
      ...sections.flatMap((section) => [section, ""]),
    ].join("\n"),
  );
}

await runMain(main);
