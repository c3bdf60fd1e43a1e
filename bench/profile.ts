import fs from "node:fs";
import path from "node:path";
import autocannon from "autocannon";
import { type CpuProfile, origin, original, selfTimes, sourceLabel, writeFlameGraph } from "./flamegraph.ts";
import {
  argument,
  buildServer,
  chatBody,
  freePort,
  guard,
  provision,
  root,
  runMain,
  startHelper,
  startLyss,
  startProxy,
  stopChild,
  tempDir,
} from "./harness.ts";

/**
 * CPU profile of Lyss's gateway under load: runs Lyss with `--cpu-prof`, drives POST
 * /v1/chat/completions with autocannon, then prints where the time went (self time by function and by
 * package or source file). Beside each .cpuprofile it keeps (which Chrome DevTools' Performance panel
 * and speedscope also open) it writes a flame graph, `.svg`, and its folded stacks (bench/flamegraph.ts).
 *
 * With `--target bare` (or `floor`) the bare proxy (or the framework floor) is profiled instead, on the
 * same runtime flags, for its graph beside Lyss's.
 *
 *   npx tsx bench/profile.ts [--stream] [--seconds 10] [--connections 50] [--workers 1] [--target lyss|bare|floor] [--out bench/profiles]
 */

const stream = process.argv.includes("--stream");
const seconds = Number(argument("--seconds", "10"));
const connections = Number(argument("--connections", "50"));
const workers = argument("--workers", "1");
const target = argument("--target", "lyss");
const PROXIES = { bare: "bare-proxy.ts", floor: "framework-floor.ts" } as const;
const outDir = path.resolve(argument("--out", path.join(root, "bench/profiles")));

function summarize(profile: CpuProfile) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = selfTimes(profile);
  const total = [...self.values()].reduce((sum, value) => sum + value, 0);
  const byFunction = new Map<string, number>();
  const byOrigin = new Map<string, number>();
  for (const [id, micros] of self) {
    const frame = (byId.get(id) as CpuProfile["nodes"][number]).callFrame;
    const where = origin(original(frame).url);
    const key = sourceLabel(frame).name;
    byFunction.set(key, (byFunction.get(key) ?? 0) + micros);
    byOrigin.set(where, (byOrigin.get(where) ?? 0) + micros);
  }
  const top = (map: Map<string, number>, count: number) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([key, micros]) => `${((micros / total) * 100).toFixed(1).padStart(5)} %  ${key}`);
  return { total, functions: top(byFunction, 40), origins: top(byOrigin, 30) };
}

/** The target, started with the profiler on: Lyss (provisioned on a first start), or one of the proxies. */
async function started(upstreamPort: number, profiling: string[]) {
  if (target === "bare" || target === "floor") {
    const proxy = await startProxy(PROXIES[target], `http://127.0.0.1:${upstreamPort}`, profiling);
    return { base: `http://127.0.0.1:${proxy.port}`, headers: {}, child: proxy.child };
  }
  if (target !== "lyss") throw new Error(`--target is lyss, bare or floor, not ${target}`);
  const dir = tempDir("lyss-profile-");
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = { LYSS_WORKERS: workers };
  const first = await startLyss(port, dir, { env });
  const { token } = await provision(base, upstreamPort, []);
  await stopChild(first.child);
  const { child } = await startLyss(port, dir, { env, nodeArgs: profiling });
  return { base, headers: { authorization: `Bearer ${token.key}` }, child };
}

async function main() {
  guard(10 * 60_000);
  buildServer();
  const upstream = await startHelper("fake-upstream.ts", ["0"]);
  const profiles = tempDir("lyss-cpu-");
  const profiling = ["--cpu-prof", `--cpu-prof-dir=${profiles}`];
  const { base, headers, child } = await started(upstream.port, profiling);
  const load = (duration: number) =>
    autocannon({
      url: `${base}/v1/chat/completions`,
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: chatBody(stream),
      connections,
      duration,
    });
  await load(2);
  const result = await load(seconds);
  await stopChild(child);
  console.log(`${stream ? "stream" : "plain"}, ${connections} connections, ${seconds} s: ${Math.round(result.requests.average)} req/s`);

  // One profile per process: the server, or the primary and each worker.
  const files = fs.readdirSync(profiles).filter((name) => name.endsWith(".cpuprofile"));
  if (files.length === 0) throw new Error("no profile was written");
  fs.mkdirSync(outDir, { recursive: true });
  for (const [index, file] of files.entries()) {
    const name = `${target === "lyss" ? "gateway" : target}-${stream ? "stream" : "plain"}`;
    const kept = path.join(outDir, `${name}${files.length > 1 ? `-${index + 1}` : ""}.cpuprofile`);
    fs.copyFileSync(path.join(profiles, file), kept);
    const profile = JSON.parse(fs.readFileSync(kept, "utf8")) as CpuProfile;
    const summary = summarize(profile);
    const title = `${target === "lyss" ? "Lyss" : `the ${target} proxy`}, ${stream ? "streamed" : "plain"} chat completions, ${connections} connections, ${seconds} s`;
    const graph = writeFlameGraph(profile, kept.replace(/\.cpuprofile$/, ""), title, sourceLabel);
    console.log(`\nprofile: ${path.relative(root, kept)} (${(summary.total / 1e6).toFixed(1)} s sampled)`);
    console.log(`flame graph: ${path.relative(root, graph)} (and its folded stacks beside it)`);
    console.log("\nself time by package or file:");
    for (const line of summary.origins) console.log(line);
    console.log("\nself time by function:");
    for (const line of summary.functions) console.log(line);
  }
}

await runMain(main);
