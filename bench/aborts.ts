import { execFileSync } from "node:child_process";
import { setMaxListeners } from "node:events";
import { Agent, request } from "undici";
import {
  argument,
  buildServer,
  chatBody,
  cpuSeconds,
  freePort,
  guard,
  provision,
  runMain,
  sleep,
  startHelper,
  startLyss,
  stopChild,
  tempDir,
} from "./harness.ts";

/**
 * What a mass disconnect costs Lyss: `--streams` slow streams (one chunk a second, over 10 loopback
 * channels) opened on one worker and held, then all closed by the client at once. Prints, per round,
 * Lyss's CPU per aborted stream (its process's CPU from the close until 3 s after the client is done,
 * less what the open streams cost per second before it), and how many connections Lyss still holds
 * to the upstream afterwards: each stream's upstream connection is cut with its client, so any left
 * are connections opened after the aborts.
 *
 *   npx tsx bench/aborts.ts [--streams 2000] [--rounds 3]
 */

const count = Number(argument("--streams", "2000"));
const rounds = Number(argument("--rounds", "3"));
const SLOW_CHANNELS = 10;

guard(10 * 60_000);

/** Established connections whose peer is the upstream's port. */
function connectionsTo(port: number): number {
  const lines = execFileSync("ss", ["-tnH", "state", "established"], { encoding: "utf8" }).split("\n");
  return lines.filter((line) => line.trim().split(/\s+/)[3]?.endsWith(`:${port}`)).length;
}

async function main() {
  buildServer();
  const extraHosts = Array.from({ length: SLOW_CHANNELS }, (_, i) => `127.0.0.${i + 2}`);
  const upstream = await startHelper("fake-upstream.ts", ["0", ...extraHosts]);
  const port = await freePort();
  const { child } = await startLyss(port, tempDir("lyss-aborts-"), { env: { LYSS_WORKERS: "1", LYSS_UPSTREAM_CONNECTIONS: "0" } });
  const base = `http://127.0.0.1:${port}`;
  const { token } = await provision(base, upstream.port, extraHosts);
  console.log(`${count} slow streams on one Lyss worker, closed by the client at once, ${rounds} rounds`);
  for (let round = 1; round <= rounds; round++) {
    const agent = new Agent({ connections: count + 10, keepAliveTimeout: 5_000, pipelining: 1 });
    const controller = new AbortController();
    setMaxListeners(0, controller.signal);
    let started = 0;
    const streams = Array.from({ length: count }, async () => {
      try {
        const answer = await request(`${base}/v1/chat/completions`, {
          method: "POST",
          dispatcher: agent,
          signal: controller.signal,
          headers: { "content-type": "application/json", authorization: `Bearer ${token.key}` },
          body: chatBody(true, "bench-slow"),
          headersTimeout: 0,
          bodyTimeout: 0,
        });
        let first = true;
        for await (const _part of answer.body) {
          if (first) started++;
          first = false;
        }
      } catch {
        // aborted
      }
    });
    const deadline = performance.now() + 120_000;
    while (started < count && performance.now() < deadline) await sleep(100);
    await sleep(4_000);
    const heldFrom = cpuSeconds(child.pid);
    await sleep(2_000);
    const heldPerSecond = (cpuSeconds(child.pid) - heldFrom) / 2;
    const before = cpuSeconds(child.pid);
    const closing = performance.now();
    controller.abort();
    await Promise.allSettled(streams);
    await agent.close();
    const clientMs = performance.now() - closing;
    await sleep(3_000);
    const seconds = (performance.now() - closing) / 1000;
    // The open streams' cost is an upper bound here: they end during the window.
    const used = cpuSeconds(child.pid) - before - heldPerSecond * seconds;
    console.log(
      `round ${round}: ${started} streams open, ${((heldPerSecond * 1e6) / count).toFixed(1)} µs of CPU a stream-second while held; ` +
        `closed by the client in ${clientMs.toFixed(0)} ms; Lyss ${(used * 1000).toFixed(0)} ms of CPU, ${((used * 1e6) / count).toFixed(0)} µs per aborted stream; ` +
        `connections to the upstream 3 s later: ${connectionsTo(upstream.port)}`,
    );
  }
  await stopChild(child);
}

await runMain(main);
