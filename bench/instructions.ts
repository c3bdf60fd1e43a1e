import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import autocannon from "autocannon";
import { functionReport } from "./callgrind-functions.ts";
import {
  argument,
  buildServer,
  chatBody,
  cleanup,
  freePort,
  guard,
  here,
  provision,
  root,
  sleep,
  startEnv,
  startFlags,
  startHelper,
  tempDir,
} from "./harness.ts";

/**
 * Instructions per request, counted by valgrind's callgrind: unlike CPU time on a shared machine, the
 * count hardly depends on what else the machine is doing, so it tells small changes apart. Each target
 * (the bare proxy, the framework floor, Lyss with one worker on SQLite) runs under callgrind with
 * counting off; after a warm-up the count is switched on for a fixed number of requests, dumped per
 * thread, and divided by them, in a few windows per shape of which the least is kept. The main thread
 * is what bounds a process's requests per second; all threads add V8's compiler and Lyss's usage
 * writer. Kernel time (syscalls) is not counted. Work done every so often (timers, collections of the
 * old generation, late compilations) still moves a window's count by up to ~20 % under valgrind, which
 * slows requests about fifty times but not the clock: compare the least of several windows.
 *
 * With `--functions <n>` the targets run with `--perf-basic-prof` and each shape's last window is also
 * printed by function (the n first, see callgrind-functions.ts): which part of a request a change
 * made cheaper, in counts that do not move with the machine's load.
 *
 * With `--cache-sim` callgrind also simulates the caches (L1 of 32 KB for instructions and for data, and
 * a 1 MB last level, this machine's L2) and each window prints the main thread's misses per request.
 * Lyss and the bare proxy run about as many instructions per request while Lyss takes 1.3–1.9× the CPU
 * time: the misses show where the difference goes (code fetched again from L2 and beyond, not the
 * count of instructions). The simulation is a model of the caches, not this CPU's. With `--functions`
 * too, the listing ends with the functions whose code and whose data reads missed the last level most.
 *
 * With `KEEP_DUMP=1` each dump is also copied to `/tmp/cg-<dir>-callgrind.out.<n>-<thread>` and each
 * target's perf map (with `--functions`) to `/tmp/cg-<target>.map`, for reading callers of a function
 * after the run (callgrind's `cfn=` lines, JavaScript named through the map).
 *
 *   npx tsx bench/instructions.ts [--requests 2000] [--warmup 8000] [--rounds 3] [--connections 20] [--stream | --plain] [--targets bare,floor,lyss] [--functions 40] [--cache-sim]
 */

const requests = Number(argument("--requests", "2000"));
const warmup = Number(argument("--warmup", "8000"));
const connections = Number(argument("--connections", "20"));
const rounds = Number(argument("--rounds", "3"));
const shapes = process.argv.includes("--stream") ? [true] : process.argv.includes("--plain") ? [false] : [false, true];
const targets = argument("--targets", "bare,floor,lyss").split(",");
const functions = Number(argument("--functions", "0"));
const cacheSim = process.argv.includes("--cache-sim");
/** The caches simulated with `--cache-sim`: this machine's L1 (32 KB, 8-way) and its 1 MB L2 as the last level. */
const CACHE_SIM = ["--cache-sim=yes", "--I1=32768,8,64", "--D1=32768,8,64", "--LL=1048576,8,64"];

guard(30 * 60_000);

function valgrind(outFile: string, nodeArgs: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(
    "valgrind",
    [
      "--tool=callgrind",
      "--instr-atstart=no",
      "--separate-threads=yes",
      ...(cacheSim ? CACHE_SIM : []),
      `--callgrind-out-file=${outFile}`,
      process.execPath,
      ...nodeArgs,
    ],
    { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] },
  );
}

async function waitFor(url: string, child: ChildProcess, ms: number) {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited before ${url} answered`);
    try {
      const answer = await fetch(url, { method: "POST", body: chatBody(false), headers: { "content-type": "application/json" } });
      await answer.arrayBuffer();
      if (answer.status < 500) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error(`${url} did not answer in ${ms / 1000} s`);
}

async function load(origin: string, headers: Record<string, string>, stream: boolean, amount: number) {
  const result = await autocannon({
    url: `${origin}/v1/chat/completions`,
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: chatBody(stream),
    connections,
    amount,
    pipelining: 1,
    timeout: 60,
  });
  const failed = result.non2xx + result.errors + result.timeouts;
  if (failed) throw new Error(`${failed} of ${amount} requests failed`);
}

/** The total of a dump file. */
function dumpedInstructions(file: string): number {
  const text = fs.readFileSync(file, "utf8");
  // (The header's summary line wraps around after counting was switched off and on; the totals do not.)
  const match = /^totals:\s+(\d+)/m.exec(text);
  if (!match) throw new Error(`no totals in ${file}`);
  return Number(match[1]);
}

/**
 * With `--cache-sim`: a dump's simulated cache events per request (instruction reads and misses in
 * L1 and the last level, data reads and writes and their misses), from its `events:` and `totals:` lines.
 */
function cacheReport(file: string, per: number): string {
  const text = fs.readFileSync(file, "utf8");
  const names = (/^events:\s+(.+)$/m.exec(text)?.[1] ?? "").trim().split(/\s+/);
  const totals = (/^totals:\s+([\d ]+)/m.exec(text)?.[1] ?? "").trim().split(/\s+/).map(Number);
  return names.map((name, index) => `${name} ${((totals[index] ?? 0) / per).toFixed(0)}`).join(", ");
}

/** callgrind_control, with the target's environment: valgrind names its control pipes after HOST and USER. */
function control(child: ChildProcess, env: NodeJS.ProcessEnv, ...args: string[]) {
  execFileSync("callgrind_control", [...args, String(child.pid)], { env, stdio: "ignore" });
}

/**
 * The counts of one dump, per thread (callgrind.out.<n>-<thread>, thread 1 the main thread), once every
 * thread's file is complete; the files are removed.
 */
async function dumped(
  dir: string,
  child: ChildProcess,
  log: () => string,
  report?: (mainThreadFile: string) => void,
): Promise<{ main: number; all: number }> {
  const deadline = performance.now() + 120_000;
  let previous = "";
  while (performance.now() < deadline && child.exitCode === null) {
    const files = fs
      .readdirSync(dir)
      .filter((file) => /^callgrind\.out\.\d+-\d+$/.test(file))
      .sort();
    const complete = files.length > 0 && files.every((file) => /^totals:/m.test(fs.readFileSync(path.join(dir, file), "utf8")));
    // Complete and the same list as 0.5 s ago: every thread has been written.
    if (complete && files.join() === previous) {
      let main = 0;
      let all = 0;
      for (const file of files) {
        const count = dumpedInstructions(path.join(dir, file));
        all += count;
        if (file.endsWith("-01")) {
          main = count;
          if (cacheSim) console.log(`    main thread per request: ${cacheReport(path.join(dir, file), requests)}`);
          report?.(path.join(dir, file));
        }
        if (process.env.KEEP_DUMP) fs.copyFileSync(path.join(dir, file), `/tmp/cg-${path.basename(dir)}-${file}`);
        fs.rmSync(path.join(dir, file));
      }
      return { main, all };
    }
    previous = complete ? files.join() : "";
    await sleep(500);
  }
  throw new Error(`no callgrind dump:\n${log().slice(-2000)}`);
}

async function measure(name: string, upstream: string): Promise<Record<string, number>> {
  const dir = tempDir(`lyss-instr-${name}-`);
  const port = await freePort();
  const outFile = path.join(dir, "callgrind.out");
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: "production", LOG_LEVEL: "warn" };
  let nodeArgs: string[];
  if (name === "bare") nodeArgs = ["--import", "tsx", path.join(here, "bare-proxy.ts"), String(port), upstream];
  else if (name === "floor") nodeArgs = ["--import", "tsx", path.join(here, "framework-floor.ts"), String(port), upstream];
  else {
    nodeArgs = [...startFlags(), path.join(root, "apps/server/bin/lyss.js"), "start"];
    Object.assign(env, startEnv(), { LYSS_DATA_DIR: dir, PORT: String(port), HOST: "127.0.0.1", LYSS_WORKERS: "1" });
    for (const variable of ["DATABASE_URL", "REDIS_URL", "LYSS_ADMIN_EMAIL", "LYSS_ADMIN_PASSWORD"]) delete env[variable];
  }
  if (functions) nodeArgs = ["--perf-basic-prof", ...nodeArgs];
  const child = valgrind(outFile, nodeArgs, env);
  const perfMap = `/tmp/perf-${child.pid}.map`;
  let log = "";
  child.stdout?.on("data", (data: Buffer) => (log += data.toString()));
  child.stderr?.on("data", (data: Buffer) => (log += data.toString()));
  const origin = `http://127.0.0.1:${port}`;
  const results: Record<string, number> = {};
  try {
    await waitFor(`${origin}/v1/chat/completions`, child, 300_000);
    let headers: Record<string, string> = {};
    if (name === "lyss") {
      const upstreamPort = new URL(upstream).port;
      const { token } = await provision(origin, Number(upstreamPort), []);
      headers = { authorization: `Bearer ${token.key}` };
    }
    for (const stream of shapes) await load(origin, headers, stream, warmup);
    // Each shape is counted in several windows, interleaved; the least count is kept: what runs now and
    // then (a timer, a collection of the old generation, a late compilation) only ever adds to a window.
    for (let round = 0; round < rounds; round++) {
      for (const stream of shapes) {
        control(child, env, "-i", "on");
        await load(origin, headers, stream, requests);
        control(child, env, "-d");
        control(child, env, "-i", "off");
        const shape = stream ? "stream" : "plain";
        const report =
          functions && round === rounds - 1
            ? (file: string) => console.log(`\n${name} ${shape}, last window\n${functionReport(file, perfMap, requests, functions)}\n`)
            : undefined;
        const counts = await dumped(dir, child, () => log, report);
        results[shape] = Math.min(results[shape] ?? Number.POSITIVE_INFINITY, counts.main / requests);
        results[`${shape}, all threads`] = Math.min(results[`${shape}, all threads`] ?? Number.POSITIVE_INFINITY, counts.all / requests);
        console.log(
          `  ${name} ${shape} window ${round + 1}: ${(counts.main / requests / 1000).toFixed(0)} k (${(counts.all / requests / 1000).toFixed(0)} k)`,
        );
      }
    }
  } finally {
    child.kill("SIGKILL");
    if (process.env.KEEP_DUMP && fs.existsSync(perfMap)) fs.copyFileSync(perfMap, `/tmp/cg-${name}.map`);
    fs.rmSync(perfMap, { force: true });
  }
  return results;
}

buildServer();
const upstream = await startHelper("fake-upstream.ts", ["0"]);
const upstreamOrigin = `http://127.0.0.1:${upstream.port}`;
const table: Record<string, Record<string, number>> = {};
for (const name of targets) {
  table[name] = await measure(name, upstreamOrigin);
  console.log(
    name,
    Object.entries(table[name] ?? {})
      .map(([shape, count]) => `${shape} ${(count / 1000).toFixed(0)} k`)
      .join(", "),
  );
}
console.log("\ninstructions per request, main thread (all threads), thousands");
for (const shape of shapes.map((stream) => (stream ? "stream" : "plain"))) {
  const bare = table.bare?.[shape];
  const row = targets.map((name) => {
    const main = table[name]?.[shape] ?? 0;
    const all = table[name]?.[`${shape}, all threads`] ?? 0;
    return `${name} ${(main / 1000).toFixed(0)} k (${(all / 1000).toFixed(0)} k)${bare ? ` ${(main / bare).toFixed(2)}×` : ""}`;
  });
  console.log(`${shape}: ${row.join(" | ")}`);
}
cleanup();
process.exit(0);
