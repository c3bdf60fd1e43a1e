import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ABLATIONS, ablate, parseTarget } from "./ablations.ts";
import { driveInSlices, median, type Run, type Target } from "./gateway-report.ts";
import {
  argument,
  DEFAULT_WARM_UP,
  driver,
  freePort,
  guard,
  here,
  pinTo,
  provision,
  root,
  runMain,
  SHAPES,
  type Shape,
  startHelper,
  startLyss,
  startProxy,
  stopChild,
  tempDir,
  warmUp,
} from "./harness.ts";

/**
 * What each change bought: runs the gateway of several commits side by side against the same upstream
 * and load (one worker, 50 connections, plain, streamed in one piece and streamed a chunk at a time), in rounds that measure each of them and
 * the bare proxy in turn, and reports each one's requests per second and CPU time per request next to
 * the bare proxy's. Each commit is checked out in a
 * temporary worktree that shares this checkout's node_modules (its own workspace packages linked in)
 * and is built the way `npm install` builds it, where it has a build. `<commit>+<ablation>…` builds the
 * commit without a part of the gateway's work (bench/ablations.ts): what that part costs. A commit named
 * more than once runs as that many processes of the same build: how far two processes of the same code
 * differ, the spread any other pair's difference must exceed. `<commit>@<shape>,…` serves only those
 * shapes, in the warm-up and the rounds (`HEAD HEAD@plain`: what the plain path costs in a process that
 * has never run the streamed one).
 *
 * With `--pin` the targets (the bare proxy and every gateway, threads included) run on the last core and
 * everything else (this process, the upstream, the load generator) on the others: a target's CPU per
 * request then moves less with what else the machine runs (the same build's ratio to the bare proxy
 * moved by 0.1–0.4 between rounds unpinned on 2 cores).
 *
 * `--node-flags` adds Node flags to every gateway process, `{n}` in them standing for the process's
 * number among those of its commit (`--node-flags "--random-seed={n} --hash-seed={n}"`): what the
 * spread between processes of one build comes from.
 *
 *   npx tsx bench/compare.ts <commit>[+<ablation>…][@<shape>,…] [<commit>… …] [--seconds 10] [--repeats 4] [--shapes plain,stream,chunked] [--pin] [--node-flags "<flags>"]
 */

const seconds = Number(argument("--seconds", "10"));
/** Each run is slices of this many seconds, the targets taking turns. */
const SLICE_S = 2;
const repeats = Number(argument("--repeats", "4"));
const shapes = argument("--shapes", SHAPES.join(","))
  .split(",")
  .filter((shape): shape is Shape => (SHAPES as readonly string[]).includes(shape));
const pinned = process.argv.includes("--pin");
/** The options that take a value: what follows one of them is no commit. */
const VALUED = new Set(["--seconds", "--repeats", "--shapes", "--node-flags"]);
/** Node flags of the gateway processes, `{n}` standing for the process's number among its commit's. */
const nodeFlags = (instance: number) =>
  argument("--node-flags", "")
    .split(/\s+/)
    .filter(Boolean)
    .map((flag) => flag.replaceAll("{n}", String(instance)));
const commits = process.argv.slice(2).filter((arg, i, all) => !arg.startsWith("--") && !VALUED.has(all[i - 1] ?? ""));
/** With `--pin`: the targets' core, and the others' (on one core, both are that one). */
const lastCpu = os.cpus().length - 1;
const targetCpus = String(lastCpu);
const otherCpus = lastCpu > 0 ? `0-${lastCpu - 1}` : "0";

const LABELS: Record<Shape, string> = { plain: "plain", stream: "stream", chunked: "chunked stream" };

/** Whether this process (and so every process it starts) runs without address space layout randomization (`setarch -R`). */
const noAslr = () => (Number.parseInt(fs.readFileSync("/proc/self/personality", "utf8"), 16) & 0x0040000) !== 0;

const git = (...args: string[]) => execFileSync("git", args, { cwd: root, encoding: "utf8" }).trim();

/** A worktree of `commit` (with the ablations' edits) whose node_modules are this checkout's, with its own workspace packages. */
function checkout(commit: string, ablations: string[]): string {
  const dir = tempDir("lyss-compare-");
  fs.rmSync(dir, { recursive: true, force: true });
  git("worktree", "add", "--detach", dir, commit);
  ablate(dir, ablations);
  const modules = path.join(dir, "node_modules");
  fs.mkdirSync(path.join(modules, "@lyss"), { recursive: true });
  for (const entry of fs.readdirSync(path.join(root, "node_modules"))) {
    if (entry !== "@lyss") fs.symlinkSync(path.join(root, "node_modules", entry), path.join(modules, entry));
  }
  for (const [name, target] of [
    ["contracts", "packages/contracts"],
    ["llm", "packages/llm"],
    ["server", "apps/server"],
  ]) {
    fs.symlinkSync(path.join(dir, target as string), path.join(modules, "@lyss", name as string));
  }
  const build = path.join(dir, "apps/server/bin/build.js");
  if (fs.existsSync(build)) execFileSync(process.execPath, [build], { cwd: dir, stdio: "ignore" });
  return dir;
}

/** One commit's gateway (`commit[+ablation…]`), built, provisioned and running. */
async function startCommit(spec: string, upstreamPort: number, worktrees: string[], instance: number) {
  const { commit, ablations, only } = parseTarget(spec);
  const serves = only ? shapes.filter((shape) => only.includes(shape)) : shapes;
  if (serves.length === 0) throw new Error(`${spec} serves none of the shapes measured (${shapes.join(", ")})`);
  const dir = checkout(commit, ablations);
  worktrees.push(dir);
  const port = await freePort();
  const env = { LYSS_WORKERS: "1" };
  const data = tempDir("lyss-compare-data-");
  const first = await startLyss(port, data, { root: dir, env });
  const { token } = await provision(`http://127.0.0.1:${port}`, upstreamPort, []);
  await stopChild(first.child);
  const lyss = await startLyss(port, data, { root: dir, env, nodeArgs: nodeFlags(instance) });
  const target: Target = {
    // A commit named more than once runs as several processes of the same build: each its own target.
    name: instance > 1 ? `${spec}#${instance}` : spec,
    origin: `http://127.0.0.1:${port}`,
    headers: { authorization: `Bearer ${token.key}` },
    pid: lyss.child.pid,
  };
  if (pinned && lyss.child.pid) pinTo(lyss.child.pid, targetCpus);
  return { spec, commit, ablations, serves, instance, target, child: lyss.child, readyMs: lyss.readyMs };
}

async function main() {
  guard(60 * 60_000);
  if (commits.length === 0) throw new Error("name at least one commit");
  // Set before anything starts: the upstream, the builds and the load generator inherit it.
  if (pinned) pinTo(process.pid, otherCpus);
  const upstream = await startHelper("fake-upstream.ts", ["0"]);
  const bareProxy = await startProxy("bare-proxy.ts", `http://127.0.0.1:${upstream.port}`);
  const bare: Target = { name: "bare", origin: `http://127.0.0.1:${bareProxy.port}`, headers: {}, pid: bareProxy.child.pid };
  if (pinned && bare.pid) pinTo(bare.pid, targetCpus);
  const rows: string[] = [];
  const worktrees: string[] = [];
  try {
    // Every commit's gateway runs at once (idle but for its own turn), so each round measures them all
    // within a few seconds of each other and of the bare proxy: the machine's drift cancels out.
    const started = [];
    for (const [index, commit] of commits.entries()) {
      const instance = commits.slice(0, index + 1).filter((spec) => spec === commit).length;
      started.push(await startCommit(commit, upstream.port, worktrees, instance));
    }
    const targets = [bare, ...started.map((item) => item.target)];
    const served = new Map<Target, readonly Shape[]>([[bare, shapes], ...started.map((item) => [item.target, item.serves] as const)]);
    const serving = (target: Target, shape: Shape) => served.get(target)?.includes(shape) ?? false;
    const runs = new Map<string, Run[]>(targets.flatMap((target) => shapes.map((shape) => [`${target.name}:${shape}`, []])));
    for (const target of targets) await warmUp([target], served.get(target) ?? shapes);
    for (let round = 0; round < repeats; round++) {
      for (const shape of shapes) {
        // The order rotates each round, so no target always runs right after another.
        const rotated = targets
          .map((_, index) => targets[(index + round) % targets.length] as Target)
          .filter((target) => serving(target, shape));
        // Each run is 2 s slices, the targets taking turns (which way round alternating): the machine's
        // speed moves within seconds, and slices side by side meet the same machine (bench/RESULTS.md).
        const summedRuns = await driveInSlices(rotated, 50, shape, seconds, SLICE_S);
        for (const target of rotated) runs.get(`${target.name}:${shape}`)?.push(summedRuns.get(target.name) as Run);
      }
    }
    const of = (target: Target, shape: Shape) => runs.get(`${target.name}:${shape}`) ?? [];
    for (const { spec, commit, ablations, serves, instance, target, child, readyMs } of started) {
      const cells: string[] = [];
      for (const shape of shapes) {
        if (!serves.includes(shape)) {
          cells.push("—", "—");
          continue;
        }
        const mine = of(target, shape);
        const theirs = of(bare, shape);
        // Ratios within each round, then their median.
        const rpsRatio = median(mine.map((run, index) => run.rps / (theirs[index]?.rps ?? run.rps)));
        const cpuRatio = median(mine.map((run, index) => run.cpuMicrosPerRequest / (theirs[index]?.cpuMicrosPerRequest ?? 1)));
        cells.push(
          `${median(mine.map((run) => run.rps)).toFixed(0)} (${(rpsRatio * 100).toFixed(0)} %)`,
          `${median(mine.map((run) => run.cpuMicrosPerRequest)).toFixed(0)} / ${median(theirs.map((run) => run.cpuMicrosPerRequest)).toFixed(0)} µs (${cpuRatio.toFixed(2)}×)`,
        );
      }
      await stopChild(child);
      const subject = ablations.length
        ? `without ${ablations.map((name) => ABLATIONS[name]?.what).join("; without ")}`
        : git("log", "-1", "--format=%s", commit)
            .replace(/\|/g, "/")
            .replace(/[:;(].*$/, "");
      const again = `${commits.filter((named) => named === spec).length > 1 ? ` (process ${instance})` : ""}${serves.length < shapes.length ? ` (serving ${serves.join(" and ")} only)` : ""}`;
      const row = `| \`${git("rev-parse", "--short", commit)}\` ${subject}${again} | ${readyMs.toFixed(0)} ms | ${cells.join(" | ")} |`;
      console.log(row);
      rows.push(row);
    }
  } finally {
    for (const dir of worktrees) git("worktree", "remove", "--force", dir);
  }
  const cpus = os.cpus();
  const section = [
    `## What each change bought (${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC)`,
    "",
    `- Command: \`${process.argv
      .slice(1)
      .join(" ")
      .replace(/^.*?bench\//, "npx tsx bench/")}\``,
    `- Machine: ${cpus[0]?.model.trim() ?? "unknown CPU"} × ${cpus.length}, Node ${process.version}; load average at the end ${os
      .loadavg()
      .map((value) => value.toFixed(1))
      .join(" / ")}${noAslr() ? "; run under `setarch -R` (no address space layout randomization)" : ""}`,
    `- Each commit's gateway with one worker (SQLite, the benchmark's token: requests and cost limits, rpm/tpm, usage logging), 50 connections (${driver()}), ${seconds} s runs (${SLICE_S} s slices, the targets taking turns, which way round alternating, summed) after a warm-up of ${DEFAULT_WARM_UP.runs} × ${DEFAULT_WARM_UP.seconds} s per target and shape it serves (new connections each run); every commit's gateway and the bare proxy run in each of ${repeats} rounds (order rotating), medians over the rounds, and the ratios to the bare proxy are the medians of each round's ratio. CPU is the process's user + system time per answered request.${pinned ? ` Pinned (\`--pin\`): the targets on CPU ${targetCpus}, the upstream and the load generator on CPU ${otherCpus}.` : ""}`,
    "",
    `| commit | ready | ${shapes.map((shape) => `${LABELS[shape]} req/s (of bare) | ${LABELS[shape]} CPU/request lyss / bare`).join(" | ")} |`,
    `|---|---:|${shapes.map(() => "---:|---:|").join("")}`,
    ...rows,
    "",
  ].join("\n");
  const file = path.join(here, "RESULTS.md");
  fs.writeFileSync(file, `${fs.readFileSync(file, "utf8").replace(/\n*$/, "\n\n")}${section}`);
  console.log(`appended to ${path.relative(root, file)}`);
}

await runMain(main);
