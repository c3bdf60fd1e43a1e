import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { build } from "esbuild";
import { functionCounts } from "./callgrind-functions.ts";
import { median } from "./gateway-report.ts";
import { argument, guard, root, runMain, startFlags, tempDir } from "./harness.ts";
import { wholeStream } from "./stream-frames.ts";

/**
 * The one-piece stream's frame work in a loop, away from the gateway's other work and the machine's
 * load: the benchmark's stream (24 frames in one piece) read into frames and relayed (`readFrameBatches`
 * and `relayBatch`, with a new decoder and encoder per stream as a request makes them), bundled as the
 * production build bundles (tsx names every closure through `Object.defineProperty`, which the build
 * does not) and run pinned to one core. Prints microseconds per stream, the median of the rounds after
 * the first; with `--instructions`, also instructions per stream under callgrind (the difference between
 * a run of one round of `--streams` and one of two, after the same warm-up rounds: the count does not
 * move with the machine's load) and the functions they went to. Other checkouts (a worktree of another commit,
 * say) are measured the same way, their processes taking turns with this one's.
 *
 * With `--text <text>` each chunk carries that text instead of "tok " (with any character past ASCII
 * the piece's frames are encoded again for the client instead of passed on as its bytes).
 *
 *   npx tsx bench/frame-loop.ts [--rounds 8] [--streams 20000] [--repeats 2] [--text "tok "] [--instructions] [--checkout <dir> …]
 */

const rounds = Number(argument("--rounds", "8"));
const streams = Number(argument("--streams", "20000"));
const repeats = Number(argument("--repeats", "2"));
const instructions = process.argv.includes("--instructions");
// Each chunk's text: the benchmark's "tok " (ASCII, so its frames pass on as the upstream's bytes), or another.
const piece = argument("--text", "tok ");
const checkouts = [
  root,
  ...process.argv.flatMap((arg, index) => (arg === "--checkout" ? [path.resolve(process.argv[index + 1] ?? ".")] : [])),
];

guard(30 * 60_000);

/** The loop, bundled against a checkout's sources: `node loop.mjs <piece file> <warm-up rounds> <rounds> <streams>`. */
const LOOP = `
import fs from "node:fs";
import { getProvider, readFrameBatches } from "@lyss/llm";
import { openAIInbound } from "./modules/gateway/inbound.ts";
import { relayBatch } from "./modules/gateway/stream-batch.ts";

const [pieceFile, warmUps, rounds, streams] = process.argv.slice(2);
const piece = fs.readFileSync(pieceFile);
const provider = getProvider("openai-compatible");
const context = { baseUrl: "http://upstream.test", credentials: {}, model: "bench-model" };
const request = { model: "bench-model", messages: [{ role: "user", content: "Say something." }], stream: true };
let kept = 0;

async function relayOne() {
  let onData;
  const body = {
    on(event, listener) { if (event === "data") onData = listener; return body; },
    off() { return body; },
    pause() {},
    resume() {},
  };
  const batches = readFrameBatches(body, "sse");
  onData(piece);
  const batch = (await batches.next()).value;
  const decoder = provider.chat.stream(context, request);
  const encoder = openAIInbound.streamEncoder("bench-model", false);
  const state = { text: "", pieces: 0 };
  const out = relayBatch(decoder, encoder, state, batch);
  kept += out.parts.length + state.text.length + (state.usage ? 1 : 0);
}

for (let round = 0; round < Number(warmUps) + Number(rounds); round++) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < Number(streams); i++) await relayOne();
  const micros = Number(process.hrtime.bigint() - started) / 1000 / Number(streams);
  if (round >= Number(warmUps)) process.stdout.write(micros.toFixed(3) + "\\n");
}
if (kept === 0) throw new Error("nothing relayed");
`;

async function bundle(checkout: string, dir: string): Promise<string> {
  const out = path.join(dir, `loop-${path.basename(checkout)}.mjs`);
  await build({
    stdin: { contents: LOOP, resolveDir: path.join(checkout, "apps/server/src"), loader: "ts", sourcefile: "frame-loop-entry.ts" },
    outfile: out,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    logLevel: "warning",
    banner: { js: "import { createRequire as __lyssRequire } from 'node:module'; const require = __lyssRequire(import.meta.url);" },
  });
  return out;
}

const lastCpu = String(os.availableParallelism() - 1);

/** Microseconds per stream, one value a round after the first. */
function timed(loop: string, pieceFile: string): number[] {
  const out = execFileSync(
    "taskset",
    ["-c", lastCpu, process.execPath, ...startFlags(), loop, pieceFile, "1", String(rounds), String(streams)],
    {
      encoding: "utf8",
    },
  );
  return out.trim().split("\n").map(Number);
}

/**
 * Rounds before the counted ones under callgrind. Valgrind runs one thread at a time, and V8's
 * compiler thread, starved, left the loop in its baseline tier (three times the instructions) for
 * tens of thousands of streams: under callgrind the loop compiles on its own thread instead.
 */
const COUNT_WARM_UPS = 2;

/** Instructions under callgrind for `measured` rounds after the warm-up rounds: all threads', and the main thread's dump. */
function counted(loop: string, pieceFile: string, measured: number, dir: string, index: number) {
  const outFile = path.join(dir, `callgrind-${index}-${measured}`);
  execFileSync(
    "valgrind",
    [
      "--tool=callgrind",
      "--separate-threads=yes",
      `--callgrind-out-file=${outFile}`,
      process.execPath,
      ...startFlags(),
      "--no-concurrent-recompilation",
      "--perf-basic-prof",
      loop,
      pieceFile,
      String(COUNT_WARM_UPS),
      String(measured),
      String(streams),
    ],
    { stdio: "ignore" },
  );
  const dumps = fs.readdirSync(dir).filter((file) => file.startsWith(path.basename(outFile)));
  let total = 0;
  for (const file of dumps) {
    const text = fs.readFileSync(path.join(dir, file), "utf8");
    total += Number(/\ntotals: (\d+)/.exec(text)?.[1] ?? 0);
  }
  const main = dumps.find((file) => file.endsWith("-01"));
  return { total, main: main ? path.join(dir, main) : undefined };
}

/** The perf map a process wrote, by its pid in the dump's header. */
function perfMapOf(dump: string): string | undefined {
  const pid = /\npid: (\d+)/.exec(fs.readFileSync(dump, "utf8"))?.[1];
  const map = pid ? `/tmp/perf-${pid}.map` : undefined;
  return map && fs.existsSync(map) ? map : undefined;
}

function instructionReport(label: string, loop: string, pieceFile: string, dir: string, index: number) {
  const once = counted(loop, pieceFile, 1, dir, index);
  const twice = counted(loop, pieceFile, 2, dir, index);
  console.log(`${label}: ${((twice.total - once.total) / streams / 1000).toFixed(1)} k instructions a stream (all threads)`);
  if (!once.main || !twice.main) return;
  const mapOnce = perfMapOf(once.main);
  const mapTwice = perfMapOf(twice.main);
  const before = functionCounts(once.main, mapOnce).self;
  const after = functionCounts(twice.main, mapTwice).self;
  // JavaScript by name, whatever tier V8 compiled it at.
  const byName = new Map<string, number>();
  const add = (name: string, value: number) => {
    const key = name.replace(/^JS [*^~+]?/, "JS ").replace(/file:\/\/\/\S+\.mjs:\d+:\d+$/, "");
    byName.set(key, (byName.get(key) ?? 0) + value);
  };
  for (const [name, value] of after) add(name, value);
  for (const [name, value] of before) add(name, -value);
  console.log("  by function, self (main thread):");
  for (const [name, value] of [...byName.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    console.log(`  ${(value / streams).toFixed(0).padStart(8)}  ${name.slice(0, 120)}`);
  }
  for (const map of [mapOnce, mapTwice]) if (map) fs.rmSync(map, { force: true });
}

runMain(async () => {
  const dir = tempDir("lyss-frame-loop-");
  const pieceFile = path.join(dir, "piece.txt");
  fs.writeFileSync(pieceFile, wholeStream("bench-model", Math.floor(Date.now() / 1000), piece));
  const loops = await Promise.all(checkouts.map((checkout) => bundle(checkout, dir)));
  const label = (index: number) => (index === 0 ? "this checkout" : (checkouts[index] as string));
  const times = checkouts.map(() => [] as number[]);
  for (let repeat = 0; repeat < repeats; repeat++) {
    for (const [index, loop] of loops.entries()) times[index]?.push(...timed(loop, pieceFile));
  }
  console.log(
    `frame work of the benchmark's one-piece stream (each chunk's text ${JSON.stringify(piece)}), ${streams} streams a round, pinned to CPU ${lastCpu}, median of ${rounds} × ${repeats} rounds:`,
  );
  times.forEach((values, index) => {
    console.log(
      `  ${label(index)}: ${median(values).toFixed(2)} µs a stream (rounds ${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)})`,
    );
  });
  if (instructions) {
    for (const [index, loop] of loops.entries()) instructionReport(label(index), loop, pieceFile, dir, index);
  }
});
