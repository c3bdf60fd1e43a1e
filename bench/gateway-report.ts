import os from "node:os";
import { drive, SHAPES, type Shape, type Stop, startEnv, startFlags, type WarmUp } from "./harness.ts";

/** The tables and figures of one gateway benchmark run, rendered for bench/RESULTS.md. */

export interface Target {
  name: string;
  origin: string;
  headers: Record<string, string>;
  /** The process serving it (its children, the workers, are counted with it). */
  pid: number | undefined;
}

export interface Run {
  rps: number;
  /** Requests answered in the run. */
  requests: number;
  p50: number;
  p99: number;
  /** CPU time (user + system) of the target's processes per answered request. */
  cpuMicrosPerRequest: number;
  non2xx: number;
  errors: number;
}

interface Memory {
  rss: number;
  hwm: number;
}

export interface Measured {
  date: Date;
  short: boolean;
  loadBefore: number[];
  loadAfter: number[];
  repeats: number;
  durationS: number;
  /** Each closed-loop run is slices of this many seconds, the targets taking turns. */
  sliceS: number;
  /** Unrecorded runs per target and shape before the recorded ones, and their length. */
  warmup: WarmUp;
  /** The load generator of the closed-loop runs. */
  driver: "wrk" | "autocannon";
  connections: number[];
  /** Keyed `target|connections|shape`. */
  runs: Map<string, Run[]>;
  ttfbs: Map<string, number[]>;
  ttfbSamples: number;
  /** Latencies (ms) at a fixed request rate, keyed `target|shape`. */
  fixed: Map<string, number[]>;
  fixedRate: number;
  readyMs: { fresh: number[]; existing: number[] };
  memory: { idle: Memory; afterLoad: Memory };
  /**
   * `stoppedFirst`: streams stopped by their client before the reading (their usage estimated);
   * `opening`: 2 s after the last stream opened; `during`: after they were held open a while longer.
   */
  streams: {
    label: string;
    count: number;
    stoppedFirst: number;
    started: number;
    failed: number;
    before: Memory;
    opening: Memory;
    during: Memory;
  }[];
  /** How each Lyss ended on SIGTERM: those of the earlier repeats after their load runs, the last after their streams were closed by their clients. */
  stops: ({ name: string } & Stop)[];
  accounting: { requests: number; cost: number };
}

/** A stop as the results tell it: exit 0 in 412 ms. */
const stopText = (stop: { name: string } & Stop) =>
  `${stop.name} ${stop.signal ? `killed by ${stop.signal}` : `exit ${stop.code}`} in ${Math.round(stop.ms)} ms`;

/** The median (the mean of the two middle values for an even count); NaN for none. */
export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};
/**
 * One run of several slices: requests, CPU and errors summed; the rate over their time together; the
 * latency percentiles the median of the slices' own.
 */
export function summed(slices: Run[]): Run {
  const requests = slices.reduce((sum, run) => sum + run.requests, 0);
  const seconds = slices.reduce((sum, run) => sum + run.requests / run.rps, 0);
  return {
    rps: requests / seconds,
    requests,
    p50: median(slices.map((run) => run.p50)),
    p99: median(slices.map((run) => run.p99)),
    cpuMicrosPerRequest: slices.reduce((sum, run) => sum + run.cpuMicrosPerRequest * run.requests, 0) / Math.max(1, requests),
    non2xx: slices.reduce((sum, run) => sum + run.non2xx, 0),
    errors: slices.reduce((sum, run) => sum + run.errors, 0),
  };
}

/**
 * One run of `seconds` per target, taken as slices of `slice` seconds with the targets taking turns in
 * `order`, which way round alternating (reversed first when `flip`): the machine's speed moves within
 * seconds here, and slices side by side meet the same machine. Each target's slices summed, by name.
 */
export async function driveInSlices(
  order: readonly Target[],
  connections: number,
  shape: Shape,
  seconds: number,
  slice: number,
  flip = false,
): Promise<Map<string, Run>> {
  const slices = new Map<string, Run[]>(order.map((target) => [target.name, []]));
  for (let cycle = 0; cycle < Math.max(1, Math.round(seconds / slice)); cycle++) {
    for (const target of (cycle + (flip ? 1 : 0)) % 2 ? [...order].reverse() : order) {
      slices.get(target.name)?.push(await drive(target, connections, shape, slice));
    }
  }
  return new Map([...slices].map(([name, runs]) => [name, summed(runs)]));
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
};
const fmt = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : "n/a");
const pct = (value: number) => `${fmt(value * 100, 0)} %`;

export function renderSection(m: Measured): { section: string; summary: string } {
  const rows: string[] = [];
  const summary: string[] = [];
  for (const connections of m.connections) {
    for (const shape of SHAPES) {
      const of = (name: string) => m.runs.get(`${name}|${connections}|${shape}`) ?? [];
      const mid = (name: string, pick: (run: Run) => number) => median(of(name).map(pick));
      // Ratios pair each repeat's runs (the machine's speed drifts between repeats), then take the median.
      const paired = (name: string, against: string, pick: (run: Run) => number) =>
        median(of(name).map((run, index) => pick(run) / pick(of(against)[index] as Run)));
      const rps = (run: Run) => run.rps;
      const cpu = (run: Run) => run.cpuMicrosPerRequest;
      const bare = mid("bare", rps);
      const one = mid("lyss", rps);
      const two = mid("lyss×2", rps);
      const oneShare = paired("lyss", "bare", rps);
      const twoShare = paired("lyss×2", "bare", rps);
      const cpuBare = mid("bare", cpu);
      const cpuOne = mid("lyss", cpu);
      const cpuFloor = mid("floor", cpu);
      const cpuRatio = paired("lyss", "bare", cpu);
      const overFloor = median(of("lyss").map((run, index) => cpu(run) - cpu(of("floor")[index] as Run)));
      const failures = ["bare", "floor", "lyss", "lyss×2"].flatMap(of).reduce((sum, run) => sum + run.non2xx + run.errors, 0);
      const latency = (name: string) => `${fmt(mid(name, (run) => run.p50))} / ${fmt(mid(name, (run) => run.p99))} ms`;
      const cpuCell = `${fmt(cpuBare, 0)} / ${fmt(cpuOne, 0)} µs (${fmt(cpuRatio, 2)}×)`;
      const floorCell = `${fmt(mid("floor", rps), 0)} req/s, ${fmt(cpuFloor, 0)} µs (${fmt(paired("floor", "bare", cpu), 2)}× bare)`;
      const addedP50 = mid("lyss", (run) => run.p50) - mid("bare", (run) => run.p50);
      const perRepeat = of("lyss")
        .map((run) => fmt(run.rps, 0))
        .join(", ");
      rows.push(
        `| ${shape} | ${connections} | ${fmt(bare, 0)} | ${fmt(one, 0)} | **${pct(oneShare)}** | ${fmt(two, 0)} | ${pct(twoShare)} | ${latency("bare")} | ${latency("lyss")} | ${fmt(addedP50)} ms | ${cpuCell} | ${floorCell} | ${fmt(overFloor, 0)} µs | ${perRepeat} | ${failures} |`,
      );
      summary.push(
        `${shape} c=${connections}: bare ${fmt(bare, 0)}, lyss ${fmt(one, 0)} (${pct(oneShare)}), lyss×2 ${fmt(two, 0)} (${pct(twoShare)}) req/s; CPU/req ${fmt(cpuRatio, 2)}× bare, ${fmt(overFloor, 0)} µs over the framework floor`,
      );
    }
  }
  const t = (name: string) => m.ttfbs.get(name) ?? [];
  const ttfbRow = (name: string) =>
    `| ${name} | ${fmt(percentile(t(name), 50), 2)} ms | ${fmt(percentile(t(name), 90), 2)} ms | ${fmt(percentile(t(name), 99), 2)} ms | ${fmt(percentile(t(name), 50) - percentile(t("upstream"), 50), 2)} ms |`;
  const addedTtfb = percentile(t("lyss"), 50) - percentile(t("bare"), 50);
  summary.push(`stops: ${m.stops.map(stopText).join("; ")}`);
  summary.push(`ttfb p50 added over bare: ${fmt(addedTtfb, 2)} ms; ready ${fmt(median(m.readyMs.existing), 0)} ms`);
  const streamLines = m.streams.map((run) => {
    const perStream = (run.during.rss - run.before.rss) / Math.max(1, run.started);
    // The kernel raises a process's high-water mark (VmHWM) lazily, so it can read below an earlier
    // reading of its resident size: the peak is the highest of both.
    const peak = Math.max(run.opening.hwm, run.during.hwm, run.opening.rss, run.during.rss);
    summary.push(`RSS with ${run.started} streams: ${fmt(run.during.rss)} MiB`);
    return `- **${fmt(run.during.rss)} MiB (${fmt((run.during.rss * 2 ** 20) / 1e6, 0)} MB) RSS with ${run.started} of ${run.count} concurrent streams open**, held open for a while (${run.label}; after ${run.stoppedFirst} streams stopped by their client; ${run.failed} refused; ${fmt(run.before.rss)} MiB before they opened, ${fmt(run.opening.rss)} MiB 2 s after the last one opened, peak ${fmt(peak)} MiB; ≈ ${fmt(perStream * 1024, 0)} KiB per stream; the upstream sends one chunk per second).`;
  });
  const fixed = (name: string, shape: string) => m.fixed.get(`${name}|${shape}`) ?? [];
  const fixedRows = ["plain", "stream"].map((shape) => {
    const cells = (name: string) =>
      `${fmt(percentile(fixed(name, shape), 50), 2)} / ${fmt(percentile(fixed(name, shape), 90), 2)} / ${fmt(percentile(fixed(name, shape), 99), 2)} ms`;
    const added = percentile(fixed("lyss", shape), 50) - percentile(fixed("bare", shape), 50);
    summary.push(`${shape} at ${m.fixedRate} req/s: p50 added over bare ${fmt(added, 2)} ms`);
    return `| ${shape} | ${fixed("bare", shape).length} / ${fixed("lyss", shape).length} | ${cells("bare")} | ${cells("lyss")} | ${fmt(added, 2)} ms |`;
  });
  // Several starts: each one's time, after the median.
  const starts = m.readyMs.fresh.length;
  const each = (values: number[]) => (starts > 1 ? ` (${values.map((value) => fmt(value, 0)).join(", ")})` : "");
  const cpus = os.cpus();
  // `npm start`'s environment and Node flags, which the proxies run on too.
  const runtime = [...Object.entries(startEnv()).map(([name, value]) => `${name}=${value}`), "node", ...startFlags()];
  const section = [
    `## Gateway overhead (${m.date.toISOString().slice(0, 16).replace("T", " ")} UTC${m.short ? ", short run" : ""})`,
    "",
    `- Command: \`${["npx tsx bench/gateway.ts", ...process.argv.slice(2)].join(" ")}\` (or \`${["npm run bench", ...(process.argv.length > 2 ? ["--", ...process.argv.slice(2)] : [])].join(" ")}\`)`,
    `- Machine: ${cpus[0]?.model.trim() ?? "unknown CPU"} × ${cpus.length}, ${fmt(os.totalmem() / 2 ** 30, 0)} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version}; load average before ${m.loadBefore.map((v) => fmt(v)).join(" / ")}, after ${m.loadAfter.map((v) => fmt(v)).join(" / ")} (the load generator, the proxies and the upstream share these cores)`,
    "- Setup: a minimal node:http upstream speaking the OpenAI format (`bench/fake-upstream.ts`: plain JSON; `stream`: 20 SSE chunks + usage + [DONE] in one write; `chunked`: the same stream one write per chunk, each on the next turn of the upstream's event loop, as a model sends it); a bare pass-through proxy on an undici keep-alive Pool that streams the request body through (`bench/bare-proxy.ts`); the framework floor, one Fastify route with Lyss's request schema that parses and validates the body and passes the answer through, with no gateway work (`bench/framework-floor.ts`), both on Lyss's runtime (`" +
      [...runtime, "--no-allocation-site-pretenuring"].join(" ") +
      "`, the flags Lyss runs with); Lyss from its production build (`" +
      [...runtime, "apps/server/bin/lyss.js start"].join(" ") +
      "`, as `npm start` runs it, SQLite in a fresh data dir, NODE_ENV=production, LOG_LEVEL=warn) with `LYSS_WORKERS=1` (lyss) and `LYSS_WORKERS=2` (lyss×2), a token with a requests limit, a cost limit (model priced, so cost reservation runs), rpm/tpm rate limits, and usage logging.",
    `- Load: ${m.driver === "wrk" ? "wrk (2 threads)" : "autocannon"}, POST /v1/chat/completions, ${m.durationS} s per target, shape and connection count in each repeat after a warm-up of ${m.warmup.runs} × ${m.warmup.seconds} s per target and shape (new connections each run), taken as ${m.durationS / m.sliceS} slices of ${m.sliceS} s with the targets taking turns (the bare proxy and lyss always next to each other, which goes first alternating; new connections each slice) and summed: the machine's speed moves within seconds, and slices side by side meet the same machine; ${m.repeats} repeat(s), each on processes of its own (every target started again and warmed up before each repeat: two processes of one build can differ for their whole life); medians over repeats, and each ratio (and the CPU over the floor) is the median of the repeats' own ratios. CPU is user + system time of the target's processes over the run divided by the requests answered.`,
    "",
    "| shape | connections | bare req/s | lyss req/s | lyss / bare | lyss×2 req/s | lyss×2 / bare | bare p50 / p99 | lyss p50 / p99 | added p50 | CPU per request bare / lyss | framework floor | lyss CPU over the floor | lyss req/s per repeat | non-2xx + errors |",
    "|---|---:|---:|---:|---:|---:|---:|---|---|---:|---|---|---:|---|---:|",
    ...rows,
    "",
    `Time to first body byte of a stream, one request at a time, ${m.ttfbSamples} sequential requests per target (interleaved, undici keep-alive):`,
    "",
    "| target | p50 | p90 | p99 | p50 added over the upstream |",
    "|---|---:|---:|---:|---:|",
    ttfbRow("upstream"),
    ttfbRow("bare"),
    ttfbRow("lyss"),
    "",
    `Lyss adds ${fmt(addedTtfb, 2)} ms (p50) to the first byte over the bare proxy.`,
    "",
    `Latency at a fixed rate of ${m.fixedRate} requests per second over 50 connections (open loop: each request is sent when due; to the end of the answer; a rate both sustain, so this is the time Lyss adds, not time queued), ${m.repeats} × ${m.durationS} s per target and shape, interleaved:`,
    "",
    "| shape | answers bare / lyss | bare p50 / p90 / p99 | lyss p50 / p90 / p99 | p50 added |",
    "|---|---:|---|---|---:|",
    ...fixedRows,
    "",
    `- Ready time (spawn to first 200 from /health, one worker${starts > 1 ? `, the median of ${starts} starts` : ""}): ${fmt(median(m.readyMs.fresh), 0)} ms on a fresh data dir${each(m.readyMs.fresh)} (migrations included), ${fmt(median(m.readyMs.existing), 0)} ms on existing data${each(m.readyMs.existing)}.`,
    `- Lyss RSS (one worker): ${fmt(m.memory.idle.rss)} MiB after the first warm-up; ${fmt(m.memory.afterLoad.rss)} MiB after the last repeat's load runs (peak ${fmt(m.memory.afterLoad.hwm)} MiB).`,
    ...streamLines,
    `- Stops (SIGTERM; #n: the processes of repeat n, after their load runs; the others after the clients closed their streams): ${m.stops.map(stopText).join("; ")}.`,
    `- Accounting check: the token's requests quota shows ${m.accounting.requests} used and ${m.accounting.cost} micro-USD of cost after the run (one-worker Lyss).`,
    "",
  ].join("\n");
  return { section, summary: summary.join("\n") };
}
