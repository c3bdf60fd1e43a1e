import { execFileSync } from "node:child_process";
import {
  argument,
  buildServer,
  cpuSeconds,
  freePort,
  guard,
  openSlowStreams,
  provision,
  rssMiB,
  runMain,
  SLOW_HOSTS,
  sleep,
  startHelper,
  startLyss,
  stopChild,
  tempDir,
} from "./harness.ts";

/**
 * What a mass disconnect costs Lyss: `--streams` slow streams (one chunk a second, over the slow
 * channels' loopback hosts) opened on one worker and held, then all closed by the client at once.
 * Prints, per round, Lyss's CPU per aborted stream (its process's CPU from the close until 3 s after
 * the client is done, less what the open streams cost per second before it), and how many
 * connections Lyss still holds to the upstream afterwards (each stream's upstream connection is cut
 * with its client, so any left are connections opened after the aborts), and its resident memory
 * before the streams opened and after the aborts (a stream stopped before its usage came is
 * estimated with the token counter, loaded on the first).
 *
 *   npx tsx bench/aborts.ts [--streams 2000] [--rounds 3]
 */

const count = Number(argument("--streams", "2000"));
const rounds = Number(argument("--rounds", "3"));

guard(10 * 60_000);

/** Established connections whose peer is the upstream's port. */
function connectionsTo(port: number): number {
  const lines = execFileSync("ss", ["-tnH", "state", "established"], { encoding: "utf8" }).split("\n");
  return lines.filter((line) => line.trim().split(/\s+/)[3]?.endsWith(`:${port}`)).length;
}

async function main() {
  buildServer();
  const upstream = await startHelper("fake-upstream.ts", ["0", ...SLOW_HOSTS]);
  const port = await freePort();
  const { child } = await startLyss(port, tempDir("lyss-aborts-"), { env: { LYSS_WORKERS: "1", LYSS_UPSTREAM_CONNECTIONS: "0" } });
  const origin = `http://127.0.0.1:${port}`;
  const { token } = await provision(origin, upstream.port, SLOW_HOSTS);
  const target = { name: "lyss", pid: child.pid, origin, headers: { authorization: `Bearer ${token.key}` } };
  console.log(`${count} slow streams on one Lyss worker, closed by the client at once, ${rounds} rounds`);
  for (let round = 1; round <= rounds; round++) {
    const before = rssMiB(child.pid).rss;
    const opened = await openSlowStreams(target, count, 120_000);
    await sleep(4_000);
    const heldFrom = cpuSeconds(child.pid);
    await sleep(2_000);
    const heldPerSecond = (cpuSeconds(child.pid) - heldFrom) / 2;
    const cpuBefore = cpuSeconds(child.pid);
    const closing = performance.now();
    await opened.close();
    const clientMs = performance.now() - closing;
    await sleep(3_000);
    const seconds = (performance.now() - closing) / 1000;
    // The open streams' cost is an upper bound here: they end during the window.
    const used = cpuSeconds(child.pid) - cpuBefore - heldPerSecond * seconds;
    console.log(
      `round ${round}: ${opened.started} streams open, ${((heldPerSecond * 1e6) / count).toFixed(1)} µs of CPU a stream-second while held; ` +
        `closed by the client in ${clientMs.toFixed(0)} ms; Lyss ${(used * 1000).toFixed(0)} ms of CPU, ${((used * 1e6) / count).toFixed(0)} µs per aborted stream; ` +
        `connections to the upstream 3 s later: ${connectionsTo(upstream.port)}; RSS ${before.toFixed(1)} MiB before the streams, ${rssMiB(child.pid).rss.toFixed(1)} MiB after the aborts`,
    );
  }
  await stopChild(child);
}

await runMain(main);
