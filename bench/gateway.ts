import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Agent, request } from "undici";
import { driveInSlices, type Measured, type Run, renderSection, type Target } from "./gateway-report.ts";
import {
  api,
  argument,
  buildServer,
  chatBody,
  DEFAULT_WARM_UP,
  drive,
  driver,
  freePort,
  guard,
  here,
  openSlowStreams,
  provision,
  proxyTarget,
  root,
  rssMiB,
  runMain,
  SHAPES,
  SLOW_HOSTS,
  shapeBody,
  signIn,
  sleep,
  startHelper,
  startLyss,
  startProxy,
  stopChild,
  tempDir,
  warmUp,
} from "./harness.ts";

/**
 * Gateway overhead benchmark: Lyss (authentication, quotas with cost reservation, rate limits and usage
 * logging all on) with one worker and with two, against a bare undici pass-through proxy and the
 * framework floor (one Fastify route with Lyss's schema, no gateway work), all in front of the same fast
 * local OpenAI-format upstream. Measures ready time, RPS, latency and CPU time per request
 * (wrk when installed, otherwise autocannon), added time to first byte of streams, and RSS with 2,000 open streams (and, in the full
 * run, 10,000); appends a "Gateway overhead" section to bench/RESULTS.md.
 *
 *   npx tsx bench/gateway.ts [--short] [--repeats n]
 *
 * Each repeat runs on processes of its own: every target is started again and warmed up before it.
 */

const short = process.argv.includes("--short");
const REPEATS = Number(argument("--repeats", short ? "1" : "3"));
const DURATION_S = short ? 2 : 10;
/** A target's run of DURATION_S is this many seconds at a time, the targets taking turns. */
const SLICE_S = 2;
const CONNECTIONS = short ? [50] : [50, 200];
const WARM_UP = short ? { runs: 1, seconds: 1 } : DEFAULT_WARM_UP;
const TTFB_SAMPLES = short ? 100 : 300;
/** Requests per second of the fixed-rate latency runs: well within what one Lyss worker serves here. */
const FIXED_RATE = 500;
const OPEN_STREAMS = 2000;
const MANY_STREAMS = short ? 0 : 10_000;
/** One worker's ready time is measured this many times on a fresh data directory and on existing data. */
const READY_STARTS = short ? 1 : 3;
/** How long the open streams are held before their steady-state memory is read. */
const STEADY_MS = 15_000;
/** Bounded in time: about 7 minutes a repeat, and the rest (ready times, streams held open) within 20. */
const TIME_LIMIT_MS = short ? 5 * 60_000 : (20 + 7 * REPEATS) * 60_000;

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

/**
 * Latency (ms, to the end of the answer) of requests sent at a fixed rate, open loop (each is sent when
 * it is due, whether or not the earlier ones have answered), over at most `connections` connections: at
 * a rate every target sustains, this is the time each adds to a request, not time spent queueing.
 */
async function fixedRate(target: Target, stream: boolean, rate: number, seconds: number, connections: number): Promise<number[]> {
  const agent = new Agent({ connections, keepAliveTimeout: 30_000, pipelining: 1 });
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  const started = performance.now();
  let sent = 0;
  while (performance.now() - started < seconds * 1000) {
    const due = Math.floor(((performance.now() - started) * rate) / 1000);
    for (; sent < due; sent++) {
      const at = performance.now();
      pending.push(
        request(`${target.origin}/v1/chat/completions`, {
          method: "POST",
          dispatcher: agent,
          headers: { "content-type": "application/json", ...target.headers },
          body: chatBody(stream),
        }).then(async (answer) => {
          await answer.body.text();
          if (answer.statusCode === 200) latencies.push(performance.now() - at);
        }),
      );
    }
    await sleep(1);
  }
  await Promise.allSettled(pending);
  await agent.close();
  return latencies;
}

/** Streams stopped by their client before a memory reading: what a gateway that has served stops holds. */
const STOPPED_FIRST = 20;

/**
 * RSS of a Lyss with `count` concurrent slow streams open, after a few streams were stopped by their
 * client (their usage estimated: the token counter loaded).
 */
async function streamMemory(target: Target, count: number) {
  const stopped = await openSlowStreams(target, STOPPED_FIRST, 30_000);
  await stopped.close();
  await sleep(500);
  const before = rssMiB(target.pid);
  const opened = await openSlowStreams(target, count, 120_000);
  await sleep(2_000);
  const opening = rssMiB(target.pid);
  // Then the streams stay open while only their chunks flow: V8 gives back the heap it grew during the
  // load runs once allocation has been low for a while (its memory reducer), so this is the steady state.
  await sleep(STEADY_MS);
  const during = rssMiB(target.pid);
  console.log(
    `  ${target.name}: ${opened.started}/${count} streams open (${opened.failed} refused), RSS ${opening.rss.toFixed(1)} MiB after 2 s, ${during.rss.toFixed(1)} MiB after ${(2_000 + STEADY_MS) / 1000} s`,
  );
  await opened.close();
  return { count, stoppedFirst: STOPPED_FIRST, started: opened.started, failed: opened.failed, before, opening, during };
}

/**
 * Starts and provisions one Lyss with `workers` workers, measuring its ready time `starts` times each
 * on a fresh data directory (the others in throwaway ones) and on the existing data: one start on a
 * busy machine can take several times the usual.
 */
async function lyssTarget(name: string, workers: number, upstreamPort: number, extraHosts: string[], starts = 1) {
  const dir = tempDir("lyss-bench-");
  const port = await freePort();
  const env = { LYSS_WORKERS: String(workers), LYSS_UPSTREAM_CONNECTIONS: "0" };
  const readyMs = { fresh: [] as number[], existing: [] as number[] };
  for (let start = 1; start < starts; start++) {
    const throwaway = await startLyss(port, tempDir("lyss-bench-"), { env });
    readyMs.fresh.push(throwaway.readyMs);
    await stopChild(throwaway.child);
  }
  const fresh = await startLyss(port, dir, { env });
  readyMs.fresh.push(fresh.readyMs);
  const base = `http://127.0.0.1:${port}`;
  const { auth, token } = await provision(base, upstreamPort, extraHosts);
  // Restarts on the existing data (no pending migrations): the ready time an operator usually sees.
  let child = fresh.child;
  for (let start = 0; start < starts; start++) {
    await stopChild(child);
    const existing = await startLyss(port, dir, { env });
    readyMs.existing.push(existing.readyMs);
    child = existing.child;
  }
  const target: Target = { name, origin: base, headers: { authorization: `Bearer ${token.key}` }, pid: child.pid };
  /** Stops this Lyss and starts it again on its data, on the same port and with the same token. */
  const restart = async () => {
    const stop = await stopChild(child);
    child = (await startLyss(port, dir, { env })).child;
    target.pid = child.pid;
    return stop;
  };
  return { target, child: () => child, restart, auth, token, readyMs };
}

/** A reference proxy as a load target, which can be started again in a new process. */
async function restartableProxy(name: string, script: "bare-proxy.ts" | "framework-floor.ts", upstreamOrigin: string) {
  let proxy = await startProxy(script, upstreamOrigin);
  const target = proxyTarget(name, proxy);
  const restart = async () => {
    await stopChild(proxy.child);
    proxy = await startProxy(script, upstreamOrigin);
    Object.assign(target, proxyTarget(name, proxy));
  };
  return { target, restart };
}

async function main() {
  guard(TIME_LIMIT_MS);
  buildServer();
  const date = new Date();
  const loadBefore = os.loadavg();
  const extraHosts = SLOW_HOSTS;
  console.log(
    `gateway benchmark${short ? " (short)" : ""}: ${REPEATS} repeat(s), ${DURATION_S} s runs in ${SLICE_S} s slices, connections ${CONNECTIONS.join(", ")}`,
  );

  const upstream = await startHelper("fake-upstream.ts", ["0", ...extraHosts]);
  const upstreamOrigin = `http://127.0.0.1:${upstream.port}`;
  const bareProxy = await restartableProxy("bare", "bare-proxy.ts", upstreamOrigin);
  const floorServer = await restartableProxy("floor", "framework-floor.ts", upstreamOrigin);
  const bare = bareProxy.target;
  const floor = floorServer.target;
  const one = await lyssTarget("lyss", 1, upstream.port, extraHosts, READY_STARTS);
  console.log(
    `lyss ready in ${one.readyMs.fresh.map((ms) => ms.toFixed(0)).join(", ")} ms (fresh data dir), ${one.readyMs.existing.map((ms) => ms.toFixed(0)).join(", ")} ms (existing data)`,
  );
  const two = await lyssTarget("lyss×2", 2, upstream.port, extraHosts);
  const direct: Target = { name: "upstream", origin: upstreamOrigin, headers: {}, pid: upstream.child.pid };
  const targets = [floor, bare, one.target, two.target];

  // Correctness check before timing anything: every target answers every shape in full.
  const agent = new Agent({ connections: 8, keepAliveTimeout: 30_000 });
  for (const target of [direct, ...targets]) {
    for (const shape of SHAPES) {
      const answer = await request(`${target.origin}/v1/chat/completions`, {
        method: "POST",
        dispatcher: agent,
        headers: { "content-type": "application/json", ...target.headers },
        body: shapeBody(shape),
      });
      const text = await answer.body.text();
      const chunks = (text.match(/"content":"tok /g) ?? []).length;
      if (answer.statusCode !== 200 || (shape !== "plain" && chunks !== 20)) {
        throw new Error(`${target.name} ${shape}: status ${answer.statusCode}, ${chunks} chunks: ${text.slice(0, 300)}`);
      }
    }
  }

  const runs = new Map<string, Run[]>();
  const stops: Measured["stops"] = [];
  // Lyss's memory after its first warm-up, before any recorded load.
  let idle = { rss: Number.NaN, hwm: Number.NaN };
  for (let repeat = 0; repeat < REPEATS; repeat++) {
    // Each repeat measures processes of its own: two processes of the same build have differed by a
    // tenth of their CPU per request for a whole run (where V8 placed their code, say), so a median over
    // repeats in one process could be one draw measured several times.
    if (repeat > 0) {
      await Promise.all([bareProxy.restart(), floorServer.restart()]);
      stops.push({ name: `lyss #${repeat}`, ...(await one.restart()) }, { name: `lyss×2 #${repeat}`, ...(await two.restart()) });
    }
    // Warm-up (JIT, connection pools), not recorded.
    await warmUp(targets, SHAPES, WARM_UP);
    if (repeat === 0) idle = rssMiB(one.target.pid);
    for (const connections of CONNECTIONS) {
      for (const shape of SHAPES) {
        // Each target's run is several short slices, the targets taking turns: the machine's speed
        // moves within seconds here (the same bare proxy took 79 to 135 µs a request in 5 s runs a few
        // seconds apart), so a slice of Lyss and one of the bare proxy, side by side, meet the same
        // machine, and their sums over the slices pair up far better than two runs 20 s apart.
        // The bare proxy and one-worker Lyss always next to each other, which one goes first alternating.
        const summedRuns = await driveInSlices(targets, connections, shape, DURATION_S, SLICE_S, repeat % 2 === 1);
        for (const target of targets) {
          const run = summedRuns.get(target.name) as Run;
          const key = `${target.name}|${connections}|${shape}`;
          runs.set(key, [...(runs.get(key) ?? []), run]);
          console.log(
            `  #${repeat + 1} ${target.name.padEnd(6)} c=${String(connections).padEnd(3)} ${shape.padEnd(7)}: ` +
              `${run.rps.toFixed(0)} req/s, p50 ${run.p50} ms, p99 ${run.p99} ms, ${run.cpuMicrosPerRequest.toFixed(0)} µs CPU/req` +
              `${run.non2xx || run.errors ? `, non-2xx ${run.non2xx}, errors ${run.errors}` : ""}`,
          );
        }
      }
    }
  }
  const afterLoad = rssMiB(one.target.pid);

  // Added time to first byte, one request at a time, targets interleaved.
  const ttfbs = new Map<string, number[]>();
  const ttfbTargets = [direct, bare, one.target];
  for (let i = 0; i < 20; i++) for (const target of ttfbTargets) await ttfb(agent, target);
  for (let i = 0; i < TTFB_SAMPLES; i++) {
    for (const target of ttfbTargets) ttfbs.set(target.name, [...(ttfbs.get(target.name) ?? []), await ttfb(agent, target)]);
  }
  await agent.close();

  // Added latency at a rate both sustain (one Lyss worker), plain and streamed, targets interleaved.
  const fixed = new Map<string, number[]>();
  for (let repeat = 0; repeat < REPEATS; repeat++) {
    for (const stream of [false, true]) {
      for (const target of repeat % 2 ? [one.target, bare] : [bare, one.target]) {
        const key = `${target.name}|${stream ? "stream" : "plain"}`;
        fixed.set(key, [...(fixed.get(key) ?? []), ...(await fixedRate(target, stream, FIXED_RATE, DURATION_S, 50))]);
      }
    }
  }

  const streams = [{ label: "one worker, after the last repeat's load runs", ...(await streamMemory(one.target, OPEN_STREAMS)) }];
  // 10,000 streams need 20,000 sockets in the gateway (client and upstream sides): more than one
  // process may open here (ulimit -n 20,000), so that run uses the two-worker Lyss.
  if (MANY_STREAMS) {
    streams.push({
      label: "two workers, primary included, after the last repeat's load runs",
      ...(await streamMemory(two.target, MANY_STREAMS)),
    });
  }
  // How each Lyss stops after its streams were closed by their clients: a graceful stop, exit 0.
  stops.push({ name: "lyss×2", ...(await stopChild(two.child())) });
  // The same 2,000 streams in a worker started afresh (warmed up for a second, no load run before):
  // what the streams themselves cost, without the heap V8 grew during the load runs and keeps.
  const fresh = await lyssTarget("lyss fresh", 1, upstream.port, extraHosts);
  await drive(fresh.target, 50, "stream", 1);
  streams.push({ label: "one worker started afresh, no load run before", ...(await streamMemory(fresh.target, OPEN_STREAMS)) });
  stops.push({ name: "lyss fresh", ...(await stopChild(fresh.child())) });

  const tokenAfter = await api<{ limits: { metric: string; used: number }[] }>(
    one.target.origin,
    "GET",
    `/api/v1/tokens/${one.token.id}`,
    undefined,
    await signIn(one.target.origin, one.auth["x-tenant-id"] as string),
  );
  stops.push({ name: "lyss", ...(await stopChild(one.child())) });

  const measured: Measured = {
    date,
    short,
    loadBefore,
    loadAfter: os.loadavg(),
    repeats: REPEATS,
    durationS: DURATION_S,
    sliceS: SLICE_S,
    warmup: WARM_UP,
    driver: driver(),
    connections: CONNECTIONS,
    runs,
    ttfbs,
    ttfbSamples: TTFB_SAMPLES,
    fixed,
    fixedRate: FIXED_RATE,
    readyMs: one.readyMs,
    memory: { idle, afterLoad },
    streams,
    stops,
    accounting: {
      requests: tokenAfter.limits.find((limit) => limit.metric === "requests")?.used ?? Number.NaN,
      cost: tokenAfter.limits.find((limit) => limit.metric === "cost_micro_usd")?.used ?? Number.NaN,
    },
  };
  const { section, summary } = renderSection(measured);
  const resultsFile = path.join(here, "RESULTS.md");
  const existing = fs.existsSync(resultsFile) ? fs.readFileSync(resultsFile, "utf8") : "# Benchmark results\n";
  fs.writeFileSync(resultsFile, `${existing.replace(/\n*$/, "\n\n")}${section}`);
  console.log(`\n${summary}\nresults appended to ${path.relative(root, resultsFile)}`);
}

await runMain(main);
