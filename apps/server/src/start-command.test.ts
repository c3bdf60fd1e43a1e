import { readdirSync, readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { BIN, type Server, startServer } from "./test/server-process.ts";
import { freshStorage } from "./test/test-app.ts";

/** The processes below `pid`, children first. */
function descendants(pid: number): number[] {
  const found: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const children = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
    for (const child of children) found.push(child, ...descendants(child));
  }
  return found;
}

/** The server's own processes (those running bin/lyss.js) among `pid` and what it started. */
function serverProcesses(pid: number): { pid: number; argv: string[]; environ: string[] }[] {
  return [pid, ...descendants(pid)]
    .map((id) => ({
      pid: id,
      argv: readFileSync(`/proc/${id}/cmdline`, "utf8").split("\0"),
      environ: readFileSync(`/proc/${id}/environ`, "utf8").split("\0"),
    }))
    .filter((process) => process.argv.some((word) => word.endsWith("bin/lyss.js")));
}

/**
 * How a user starts the server (`npm start`, or the `lyss` program itself) sets what the benchmark's
 * memory and CPU figures rest on: two malloc arenas and V8's single-threaded collector. The test's
 * own environment has neither, so what the server process has, its start command gave it.
 */
describe.runIf(process.platform === "linux")("start commands", { timeout: 60_000 }, () => {
  let server: Server | undefined;
  let storage: Awaited<ReturnType<typeof freshStorage>> | undefined;
  let started: number[] = [];

  afterEach(async () => {
    for (const pid of started) {
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
    server?.child.kill("SIGTERM");
    await server?.exited;
    await storage?.drop();
    server = undefined;
    storage = undefined;
    started = [];
  });

  for (const [name, command] of [
    ["npm start", ["npm", "start"]],
    ["the lyss program (bin/lyss.js run as it is)", [BIN, "start"]],
  ] as const) {
    it(`${name} runs the server with two malloc arenas, the single-threaded collector and the larger inlining budget`, async () => {
      storage = await freshStorage();
      server = await startServer(storage, { LYSS_WORKERS: "1" }, command);
      const processes = serverProcesses(server.child.pid as number);
      started = processes.map((process) => process.pid);
      expect(processes.length).toBeGreaterThan(0);
      for (const process of processes) {
        expect(process.environ).toContain("MALLOC_ARENA_MAX=2");
        // The command line the process was started with, Node's flags included.
        expect(process.argv).toContain("--single-threaded-gc");
        expect(process.argv).toContain("--max-inlined-bytecode-size-cumulative=3680");
      }
    });
  }
});
