import fs from "node:fs";
import type { Target } from "./gateway-report.ts";
import {
  argument,
  buildServer,
  chosenShapes,
  DEFAULT_WARM_UP,
  drive,
  guard,
  proxyTarget,
  runMain,
  startHelper,
  startLyssTarget,
  startProxy,
  threadIds,
  threadKind,
  warmUp,
} from "./harness.ts";

/**
 * CPU time per request of each thread of the bare proxy, the framework floor and Lyss (one worker, SQLite), user and
 * system apart, read from /proc/<pid>/task before and after a run: where a process's time goes (the
 * serving thread, Lyss's usage writer, V8's helper threads) rather than only how much it is.
 *
 *   npx tsx bench/threads.ts [--seconds 8] [--connections 50] [--plain | --stream | --chunked]
 */

const seconds = Number(argument("--seconds", "8"));
const connections = Number(argument("--connections", "50"));
const shapes = chosenShapes();

guard(10 * 60_000);

/** Clock ticks per second of /proc's times (USER_HZ). */
const TICKS = 100;

interface ThreadTimes {
  user: number;
  system: number;
}

function threadTimes(pid: number): Map<string, ThreadTimes> {
  const times = new Map<string, ThreadTimes>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      times.set(tid, { user: Number(fields[11]) / TICKS, system: Number(fields[12]) / TICKS });
    } catch {
      // The thread ended meanwhile.
    }
  }
  return times;
}

async function main() {
  buildServer();
  const upstream = await startHelper("fake-upstream.ts", ["0"]);
  const bare = proxyTarget("bare", await startProxy("bare-proxy.ts", `http://127.0.0.1:${upstream.port}`));
  const floor = proxyTarget("floor", await startProxy("framework-floor.ts", `http://127.0.0.1:${upstream.port}`));
  const { target: lyss } = await startLyssTarget(upstream.port, "lyss-threads-");
  const targets: Target[] = [bare, floor, lyss];
  // Every thread is named "node": the ones there once a target serves are V8's and libuv's helpers, and
  // one started later is Lyss's usage writer (it starts with the first batch).
  const helpers = new Map<number | undefined, Set<string>>();
  for (const { pid } of targets) helpers.set(pid, pid ? threadIds(pid) : new Set());
  await warmUp(targets, shapes);
  console.log(
    `CPU µs per request by thread, user + system (main; V8's and libuv's helpers; Lyss's usage writer), ${connections} connections, ${seconds} s runs after a warm-up of ${DEFAULT_WARM_UP.runs} × ${DEFAULT_WARM_UP.seconds} s per target and shape`,
  );
  for (const shape of shapes) {
    for (const target of targets) {
      if (target.pid === undefined) throw new Error(`${target.name} has no pid`);
      const before = threadTimes(target.pid);
      const result = await drive(target, connections, shape, seconds);
      const after = threadTimes(target.pid);
      const requests = Math.max(1, result.requests);
      const rows = new Map<string, { user: number; system: number }>();
      for (const [tid, now] of after) {
        const then = before.get(tid) ?? { user: 0, system: 0 };
        const name = threadKind(target.pid, tid, helpers.get(target.pid) ?? new Set());
        const row = rows.get(name) ?? { user: 0, system: 0 };
        row.user += ((now.user - then.user) * 1e6) / requests;
        row.system += ((now.system - then.system) * 1e6) / requests;
        rows.set(name, row);
      }
      const total = [...rows.values()].reduce((sum, row) => sum + row.user + row.system, 0);
      const parts = [...rows]
        .filter(([, row]) => row.user + row.system >= 0.5)
        .map(([name, row]) => `${name} ${row.user.toFixed(0)} + ${row.system.toFixed(0)}`);
      console.log(
        `${target.name.padEnd(5)} ${shape.padEnd(7)} ${Math.round(result.rps)} req/s, ${total.toFixed(0)} µs: ${parts.join(", ")}`,
      );
    }
  }
}

await runMain(main);
