import type { ChildProcess } from "node:child_process";
import { WebSocket } from "undici";
import type { Target } from "./gateway-report.ts";
import {
  argument,
  buildServer,
  chosenShapes,
  drive,
  freePort,
  guard,
  proxyTarget,
  runMain,
  type Shape,
  startHelper,
  startLyssTarget,
  startProxy,
} from "./harness.ts";

/**
 * What a request allocates on the JavaScript heap, in the bare proxy, the framework floor and Lyss (one
 * worker, SQLite): each target runs with `--trace-gc-nvp`, whose line per collection says how many bytes
 * were allocated since the last one, how many were promoted to the old generation and how many copied
 * within the young one; their sums over a run, divided by its requests. Every byte allocated is a byte
 * the scavenger must clear away (and the cache must hold), so this is where the collector's share of a
 * request comes from. With `--sites <n>` Lyss's allocations are also sampled by V8's sampling heap
 * profiler (through the inspector, objects collected since included) and listed by function: the n
 * sites that allocate most per request, by what they allocate themselves (with what V8 inlined into
 * them) and with what they call, over 5,000 requests at most.
 *
 *   npx tsx bench/allocations.ts [--requests 20000] [--connections 50] [--plain | --stream | --chunked] [--sites 40]
 */

const requests = Number(argument("--requests", "20000"));
const connections = Number(argument("--connections", "50"));
const sites = Number(argument("--sites", "0"));
const shapes = chosenShapes(["plain", "stream"]);

guard(20 * 60_000);

/** A target and what it wrote to its standard output since the last call of `take`. */
interface Traced extends Target {
  take(): string;
}

function collecting(child: ChildProcess) {
  let text = "";
  child.stdout?.on("data", (data: Buffer) => {
    text += data.toString();
  });
  return () => {
    const taken = text;
    text = "";
    return taken;
  };
}

const load = (target: Target, shape: Shape, amount: number) => drive(target, connections, shape, 0, { amount });

/** Bytes allocated, promoted and copied in the young generation, summed over the collections in `log`. */
function collected(log: string) {
  const field = (line: string, name: string) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(line)?.[1] ?? 0);
  const sums = { collections: 0, allocated: 0, promoted: 0, copied: 0 };
  for (const line of log.split("\n")) {
    if (!/\ballocated=\d+/.test(line)) continue;
    sums.collections++;
    sums.allocated += field(line, "allocated");
    sums.promoted += field(line, "promoted");
    sums.copied += field(line, "new_space_survived");
  }
  return sums;
}

interface SampleNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SampleNode[];
}

/** Lyss's allocations during `amount` requests, sampled through the inspector, by function. */
async function sampleSites(target: Target, inspectPort: number, shape: Shape, amount: number) {
  const list = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  const socket = new WebSocket(list[0]?.webSocketDebuggerUrl ?? "");
  await new Promise((resolve, reject) => {
    socket.addEventListener("open", resolve);
    socket.addEventListener("error", reject);
  });
  let nextId = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
    if (message.id !== undefined) waiting.get(message.id)?.(message.result);
  });
  const send = (method: string, params: object = {}) =>
    new Promise<unknown>((resolve) => {
      const id = ++nextId;
      waiting.set(id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
  await send("HeapProfiler.enable");
  await send("HeapProfiler.startSampling", {
    samplingInterval: 256,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  await load(target, shape, amount);
  const { profile } = (await send("HeapProfiler.stopSampling")) as { profile: { head: SampleNode } };
  socket.close();

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  const walk = (node: SampleNode, above: Set<string>): number => {
    const frame = node.callFrame;
    const file = frame.url.replace(/^.*\/(node_modules\/|dist\/)/, "$1");
    const name = `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}`;
    self.set(name, (self.get(name) ?? 0) + node.selfSize);
    total += node.selfSize;
    let sum = node.selfSize;
    const path = new Set(above).add(name);
    for (const child of node.children) sum += walk(child, path);
    // A function that calls itself further down counts once.
    if (!above.has(name)) inclusive.set(name, (inclusive.get(name) ?? 0) + sum);
    return sum;
  };
  walk(profile.head, new Set());
  const top = (map: Map<string, number>) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, sites)
      .map(([name, bytes]) => `${String(Math.round(bytes / amount)).padStart(8)}  ${name}`)
      .join("\n");
  console.log(`\nlyss ${shape}: ${(total / amount / 1024).toFixed(1)} KB sampled per request`);
  console.log(`bytes per request by function, self (with what V8 inlined into it):\n${top(self)}`);
  console.log(`bytes per request by function, inclusive of what it calls:\n${top(inclusive)}`);
}

async function main() {
  buildServer();
  const upstream = await startHelper("fake-upstream.ts", ["0"]);
  const upstreamOrigin = `http://127.0.0.1:${upstream.port}`;
  const targets: Traced[] = [];
  for (const [name, script] of [
    ["bare", "bare-proxy.ts"],
    ["floor", "framework-floor.ts"],
  ] as const) {
    const helper = await startProxy(script, upstreamOrigin, ["--trace-gc-nvp"]);
    targets.push({ ...proxyTarget(name, helper), take: collecting(helper.child) });
  }
  const inspectPort = await freePort();
  const nodeArgs = ["--trace-gc-nvp", ...(sites ? [`--inspect=127.0.0.1:${inspectPort}`] : [])];
  const lyss = await startLyssTarget(upstream.port, "lyss-allocations-", { nodeArgs, pipeStdout: true });
  const lyssTarget: Traced = { ...lyss.target, take: collecting(lyss.child) };
  targets.push(lyssTarget);

  console.log(`${requests} requests per target and shape after as many to warm up, ${connections} connections; KB per request`);
  console.log("| target | shape | allocated | promoted | copied in the young generation | collections |");
  console.log("|---|---|---:|---:|---:|---:|");
  for (const shape of shapes) {
    for (const target of targets) {
      await load(target, shape, requests);
      target.take();
      const result = await load(target, shape, requests);
      const answered = result.requests;
      const sums = collected(target.take());
      const kb = (bytes: number) => (bytes / answered / 1024).toFixed(2);
      console.log(
        `| ${target.name} | ${shape} | ${kb(sums.allocated)} | ${kb(sums.promoted)} | ${kb(sums.copied)} | ${sums.collections} |`,
      );
    }
  }
  // (A profile of much more than 5,000 streamed requests did not come back through the inspector.)
  if (sites) for (const shape of shapes) await sampleSites(lyssTarget, inspectPort, shape, Math.min(requests, 5000));
}

await runMain(main);
