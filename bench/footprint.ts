import path from "node:path";
import { median, type Target } from "./gateway-report.ts";
import {
  argument,
  DEFAULT_WARM_UP,
  drive,
  guard,
  here,
  proxyTarget,
  runMain,
  type Shape,
  startHelper,
  startProxy,
  warmUp,
} from "./harness.ts";

/**
 * What work costs on this machine beyond its instructions: the bare proxy as it is against the same
 * proxy with synthetic work before each request (`footprint-work.ts`): distinct small functions
 * (`fn<n>`), short-lived objects (`kb<n>`), or objects held until the answer is done (`kb<n>r`).
 * Interleaved rounds, CPU per request, medians; the proxies on Lyss's runtime as every comparison runs
 * them.
 *
 *   npx tsx bench/footprint.ts [--variants base,fn1000,kb20,kb20r] [--shape stream] [--seconds 6] [--repeats 4]
 */

const variants = argument("--variants", "base,fn1000,kb20,kb20r").split(",");
const shape = argument("--shape", "stream") as Shape;
const seconds = Number(argument("--seconds", "6"));
const repeats = Number(argument("--repeats", "4"));

guard(20 * 60_000);

function variantEnv(name: string): Record<string, string> {
  const functions = /^fn(\d+)$/.exec(name);
  if (functions) return { FOOTPRINT_FUNCTIONS: functions[1] as string };
  const objects = /^kb(\d+)(r?)$/.exec(name);
  if (objects) return { FOOTPRINT_KB: objects[1] as string, FOOTPRINT_RETAIN: objects[2] ? "1" : "0" };
  if (name === "base") return {};
  throw new Error(`unknown variant ${name} (base, fn<n>, kb<n>, kb<n>r)`);
}

async function main() {
  const upstream = await startHelper("fake-upstream.ts", ["0"]);
  const origin = `http://127.0.0.1:${upstream.port}`;
  const targets: Target[] = [];
  for (const name of variants) {
    const preload = name === "base" ? [] : ["--import", "tsx", "--import", path.join(here, "footprint-work.ts")];
    targets.push(proxyTarget(name, await startProxy("bare-proxy.ts", origin, preload, variantEnv(name))));
  }
  await warmUp(targets, [shape]);
  const cpu = new Map<string, number[]>();
  const rps = new Map<string, number[]>();
  for (let round = 0; round < repeats; round++) {
    const order = round % 2 ? [...targets].reverse() : targets;
    for (const target of order) {
      const run = await drive(target, 50, shape, seconds);
      cpu.set(target.name, [...(cpu.get(target.name) ?? []), run.cpuMicrosPerRequest]);
      rps.set(target.name, [...(rps.get(target.name) ?? []), run.rps]);
    }
  }
  console.log(
    `The bare proxy with synthetic work per request, ${shape}, 50 connections, ${repeats} interleaved ${seconds} s rounds after a warm-up of ${DEFAULT_WARM_UP.runs} × ${DEFAULT_WARM_UP.seconds} s`,
  );
  const base = median(cpu.get(variants[0] as string) ?? []);
  for (const name of variants) {
    const each = cpu.get(name) ?? [];
    console.log(
      `${name.padEnd(8)} ${Math.round(median(rps.get(name) ?? []))} req/s, ${median(each).toFixed(0)} µs a request (${(median(each) - base).toFixed(0)} over ${variants[0]}; rounds ${each.map((value) => value.toFixed(0)).join(", ")})`,
    );
  }
}

await runMain(main);
