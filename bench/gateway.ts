import { setMaxListeners } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { Agent, request } from "undici";
import {
  api,
  chatBody,
  cleanup,
  cpuSeconds,
  freePort,
  guard,
  here,
  provision,
  root,
  rssMiB,
  sleep,
  startHelper,
  startLyss,
  stopChild,
  tempDir,
} from "./harness.ts";

/**
 * Gateway overhead benchmark: Lyss (authentication, quotas with cost reservation, rate limits and usage
 * logging all on) against a bare undici pass-through proxy, both in front of the same fast local
 * OpenAI-format upstream. Measures ready time, RPS and latency (autocannon), added time to first byte of
 * streams, and RSS with 2,000 open streams; appends a "Gateway overhead" section to bench/RESULTS.md.
 *
 *   npx tsx bench/gateway.ts [--short]
 */

const short = process.argv.includes("--short");
const REPEATS = short ? 1 : 3;
const DURATION_S = short ? 2 : 10;
const CONNECTIONS = short ? [50] : [50, 200];
const TTFB_SAMPLES = 200;
const OPEN_STREAMS = 2000;
const SLOW_CHANNELS = 10;
const TIME_LIMIT_MS = short ? 4 * 60_000 : 30 * 60_000;

interface Target {
  name: string;
  origin: string;
  headers: Record<string, string>;
}

interface Run {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

async function drive(target: Target, connections: number, stream: boolean, duration: number): Promise<Run> {
  const result = await autocannon({
    url: `${target.origin}/v1/chat/completions`,
    method: "POST",
    headers: { "content-type": "application/json", ...target.headers },
    body: chatBody(stream),
    connections,
    duration,
    pipelining: 1,
    timeout: 30,
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
};
const fmt = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : "n/a");

/** Time until the first body byte of one streamed request. */
async function ttfb(agent: Agent, target: Target): Promise<number> {
  const started = performance.now();
  const answer = await request(`${target.origin}/v1/chat/completions`, {
    method: "POST",
    dispatcher: agent,
    headers: { "content-type": "application/json", ...target.headers },
    body: chatBody(true),
  });
  let first = Number.NaN;
  for await (const _part of answer.body) {
    if (Number.isNaN(first)) first = performance.now() - started;
  }
  if (answer.statusCode !== 200) throw new Error(`${target.name}: status ${answer.statusCode}`);
  return first;
}

/** Opens `count` slow streams and waits (up to `waitMs`) until each has its first body chunk. */
async function openStreams(agent: Agent, target: Target, count: number, waitMs: number) {
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
      // aborted at the end
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
    },
  };
}

async function main() {
  guard(TIME_LIMIT_MS);
  const date = new Date();
  const loadBefore = os.loadavg();
  const extraHosts = Array.from({ length: SLOW_CHANNELS }, (_, i) => `127.0.0.${i + 2}`);
  console.log(
    `gateway benchmark${short ? " (short)" : ""}: ${REPEATS} repeat(s), ${DURATION_S} s runs, connections ${CONNECTIONS.join(", ")}`,
  );

  const upstream = await startHelper("fake-upstream.ts", ["0", ...extraHosts]);
  const upstreamOrigin = `http://127.0.0.1:${upstream.port}`;
  const bare = await startHelper("bare-proxy.ts", ["0", upstreamOrigin]);

  const dataDir = tempDir("lyss-bench-");
  const lyssPort = await freePort();
  const first = await startLyss(lyssPort, dataDir);
  console.log(`lyss ready (fresh data dir, migrations included) in ${fmt(first.readyMs, 0)} ms`);
  const base = `http://127.0.0.1:${lyssPort}`;
  const { auth, token } = await provision(base, upstream.port, extraHosts);

  // Restart on the existing data (no pending migrations): the ready time an operator usually sees.
  await stopChild(first.child);
  const second = await startLyss(lyssPort, dataDir);
  const lyss = second.child;
  console.log(`lyss ready (existing data) in ${fmt(second.readyMs, 0)} ms`);
  const idle = rssMiB(lyss.pid);

  const targets: Target[] = [
    { name: "bare", origin: `http://127.0.0.1:${bare.port}`, headers: {} },
    { name: "lyss", origin: base, headers: { authorization: `Bearer ${token.key}` } },
  ];
  const direct: Target = { name: "upstream", origin: upstreamOrigin, headers: {} };

  // Correctness check before timing anything: every target answers both shapes.
  const agent = new Agent({ connections: 8, keepAliveTimeout: 30_000 });
  for (const target of [direct, ...targets]) {
    for (const stream of [false, true]) {
      const answer = await request(`${target.origin}/v1/chat/completions`, {
        method: "POST",
        dispatcher: agent,
        headers: { "content-type": "application/json", ...target.headers },
        body: chatBody(stream),
      });
      const text = await answer.body.text();
      const chunks = (text.match(/"content":"tok /g) ?? []).length;
      if (answer.statusCode !== 200 || (stream && chunks !== 20)) {
        throw new Error(
          `${target.name} ${stream ? "stream" : "plain"}: status ${answer.statusCode}, ${chunks} chunks: ${text.slice(0, 300)}`,
        );
      }
    }
  }

  // Warm-up (JIT, connection pools), not recorded.
  for (const target of targets) {
    await drive(target, 50, false, 1);
    await drive(target, 50, true, 1);
  }

  const runs = new Map<string, Run[]>();
  for (let repeat = 0; repeat < REPEATS; repeat++) {
    for (const connections of CONNECTIONS) {
      for (const stream of [false, true]) {
        const order = repeat % 2 === 0 ? targets : [...targets].reverse();
        for (const target of order) {
          const run = await drive(target, connections, stream, DURATION_S);
          const key = `${target.name}|${connections}|${stream ? "stream" : "plain"}`;
          runs.set(key, [...(runs.get(key) ?? []), run]);
          console.log(
            `  #${repeat + 1} ${target.name.padEnd(4)} c=${String(connections).padEnd(3)} ${stream ? "stream" : "plain "}: ` +
              `${fmt(run.rps, 0)} req/s, p50 ${run.p50} ms, p99 ${run.p99} ms${run.non2xx || run.errors ? `, non-2xx ${run.non2xx}, errors ${run.errors}` : ""}`,
          );
        }
      }
    }
  }
  const afterLoad = rssMiB(lyss.pid);

  // Added time to first byte, one request at a time, targets interleaved.
  const ttfbs = new Map<string, number[]>();
  const ttfbTargets = [direct, ...targets];
  for (let i = 0; i < 20; i++) for (const target of ttfbTargets) await ttfb(agent, target);
  for (let i = 0; i < TTFB_SAMPLES; i++) {
    for (const target of ttfbTargets) ttfbs.set(target.name, [...(ttfbs.get(target.name) ?? []), await ttfb(agent, target)]);
  }
  await agent.close();

  // RSS with many open streams.
  const streamAgent = new Agent({ connections: OPEN_STREAMS + 10, keepAliveTimeout: 5_000, pipelining: 1 });
  const lyssTarget = targets[1] as Target;
  const beforeStreams = rssMiB(lyss.pid);
  const opened = await openStreams(streamAgent, lyssTarget, OPEN_STREAMS, 60_000);
  await sleep(2_000);
  const withStreams = rssMiB(lyss.pid);
  console.log(`  ${opened.started}/${OPEN_STREAMS} streams open (${opened.failed} refused): lyss RSS ${fmt(withStreams.rss)} MiB`);
  await opened.close();
  await streamAgent.close();

  const tokenAfter = await api<{ limits: { metric: string; used: number; reserved: number }[] }>(
    base,
    "GET",
    `/api/v1/tokens/${token.id}`,
    undefined,
    auth,
  );
  const requestsUsed = tokenAfter.limits.find((limit) => limit.metric === "requests")?.used ?? Number.NaN;
  const costUsed = tokenAfter.limits.find((limit) => limit.metric === "cost_micro_usd")?.used ?? Number.NaN;

  await stopChild(lyss);
  const loadAfter = os.loadavg();

  // Report.
  const rows: string[] = [];
  const console_: string[] = [];
  for (const connections of CONNECTIONS) {
    for (const shape of ["plain", "stream"]) {
      const of = (name: string) => runs.get(`${name}|${connections}|${shape}`) ?? [];
      const b = of("bare");
      const l = of("lyss");
      const bRps = median(b.map((run) => run.rps));
      const lRps = median(l.map((run) => run.rps));
      const bP50 = median(b.map((run) => run.p50));
      const lP50 = median(l.map((run) => run.p50));
      const bP99 = median(b.map((run) => run.p99));
      const lP99 = median(l.map((run) => run.p99));
      const failures = [...b, ...l].reduce((sum, run) => sum + run.non2xx + run.errors, 0);
      rows.push(
        `| ${shape} | ${connections} | ${fmt(bRps, 0)} | ${fmt(lRps, 0)} | ${fmt((lRps / bRps) * 100, 0)} % | ${bP50} / ${bP99} ms | ${lP50} / ${lP99} ms | ${l.map((run) => fmt(run.rps, 0)).join(", ")} | ${failures} |`,
      );
      console_.push(`${shape} c=${connections}: bare ${fmt(bRps, 0)} req/s, lyss ${fmt(lRps, 0)} req/s (ratio ${fmt(lRps / bRps, 2)})`);
    }
  }
  const t = (name: string) => ttfbs.get(name) ?? [];
  const ttfbRow = (name: string) =>
    `| ${name} | ${fmt(percentile(t(name), 50), 2)} ms | ${fmt(percentile(t(name), 90), 2)} ms | ${fmt(percentile(t(name), 99), 2)} ms | ${fmt(percentile(t(name), 50) - percentile(t("upstream"), 50), 2)} ms |`;
  const addedTtfb = percentile(t("lyss"), 50) - percentile(t("bare"), 50);
  const cpus = os.cpus();
  const command = `npx tsx bench/gateway.ts${short ? " --short" : ""}`;

  const section = [
    `## Gateway overhead (${date.toISOString().slice(0, 16).replace("T", " ")} UTC${short ? ", short run" : ""})`,
    "",
    `- Command: \`${command}\` (or \`npm run bench${short ? " -- --short" : ""}\`)`,
    `- Machine: ${cpus[0]?.model.trim() ?? "unknown CPU"} × ${cpus.length}, ${fmt(os.totalmem() / 2 ** 30, 0)} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version}; load average before ${loadBefore.map((v) => fmt(v)).join(" / ")}, after ${loadAfter.map((v) => fmt(v)).join(" / ")} (other work shares the machine when it is above the CPU count; the load generator, both proxies and the upstream share the same cores)`,
    "- Setup: a minimal node:http upstream speaking the OpenAI format (`bench/fake-upstream.ts`: plain JSON, or 20 SSE chunks + usage + [DONE] in one write); a bare pass-through proxy on an undici keep-alive Pool (`bench/bare-proxy.ts`); Lyss (`node apps/server/bin/lyss.js start`, SQLite in a fresh temp LYSS_DATA_DIR, NODE_ENV=production, LOG_LEVEL=warn) with a token carrying a requests limit, a cost limit (model priced, so cost reservation runs), rpm/tpm rate limits, and usage logging.",
    `- Load: autocannon, POST /v1/chat/completions, ${DURATION_S} s per run after a 1 s warm-up per target and shape, targets interleaved (order alternating), ${REPEATS} repeat(s); the table shows medians over repeats.`,
    "",
    "| shape | connections | bare req/s | lyss req/s | lyss / bare | bare p50 / p99 | lyss p50 / p99 | lyss req/s per repeat | non-2xx + errors |",
    "|---|---:|---:|---:|---:|---|---|---|---:|",
    ...rows,
    "",
    `Time to first body byte of a stream, one request at a time, ${TTFB_SAMPLES} sequential requests per target (interleaved, undici keep-alive):`,
    "",
    "| target | p50 | p90 | p99 | p50 added over the upstream |",
    "|---|---:|---:|---:|---:|",
    ttfbRow("upstream"),
    ttfbRow("bare"),
    ttfbRow("lyss"),
    "",
    `Lyss adds ${fmt(addedTtfb, 2)} ms (p50) to the first byte over the bare proxy.`,
    "",
    `- Ready time (spawn to first 200 from /health): ${fmt(first.readyMs, 0)} ms on a fresh data dir (migrations included), ${fmt(second.readyMs, 0)} ms on existing data.`,
    `- Lyss RSS: ${fmt(idle.rss)} MiB idle after start; ${fmt(afterLoad.rss)} MiB after the load runs (peak ${fmt(afterLoad.hwm)} MiB); ${fmt(beforeStreams.rss)} MiB before the streams; **${fmt(withStreams.rss)} MiB with ${opened.started} of ${OPEN_STREAMS} concurrent streams open** (${opened.failed} refused; the upstream sends one chunk per second; ${fmt((withStreams.rss - beforeStreams.rss) / Math.max(1, opened.started), 3)} MiB ≈ ${fmt(((withStreams.rss - beforeStreams.rss) * 1024) / Math.max(1, opened.started), 0)} KiB per stream; peak ${fmt(withStreams.hwm)} MiB).`,
    `- The streams went to ${SLOW_CHANNELS} channels on distinct loopback addresses: Lyss's upstream undici Agent allows 256 connections per origin (\`apps/server/src/modules/gateway/upstream.ts\`), so one channel could hold at most 256 streams open; the rest would queue until the first-byte timeout (read from the code, not measured here).`,
    `- Accounting check: the token's requests quota shows ${requestsUsed} used and ${costUsed} micro-USD of cost after the run.`,
    "",
  ].join("\n");

  const resultsFile = path.join(here, "RESULTS.md");
  const existing = fs.existsSync(resultsFile) ? fs.readFileSync(resultsFile, "utf8") : "# Benchmark results\n";
  fs.writeFileSync(resultsFile, `${existing.replace(/\n*$/, "\n\n")}${section}`);

  console.log("");
  for (const line of console_) console.log(line);
  console.log(
    `ttfb p50: upstream ${fmt(percentile(t("upstream"), 50), 2)} ms, bare ${fmt(percentile(t("bare"), 50), 2)} ms, lyss ${fmt(percentile(t("lyss"), 50), 2)} ms (added ${fmt(addedTtfb, 2)} ms)`,
  );
  console.log(
    `ready: ${fmt(first.readyMs, 0)} ms fresh, ${fmt(second.readyMs, 0)} ms existing; RSS with ${opened.started} streams ${fmt(withStreams.rss)} MiB`,
  );
  console.log(`results appended to ${path.relative(root, resultsFile)}`);
}

try {
  await main();
  cleanup();
  process.exit(0);
} catch (error) {
  console.error(error);
  cleanup();
  process.exit(1);
}
