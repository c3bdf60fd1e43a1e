import { execFile, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

/**
 * wrk (https://github.com/wg/wrk) as the load generator, when it is installed (`apt-get install wrk`):
 * written in C, it takes less of the machine's CPU than autocannon for the same load, which matters
 * where the generator, the upstream and the target share two cores. `LYSS_BENCH_DRIVER=autocannon`
 * keeps autocannon although wrk is there (to compare with results taken with it).
 */

let installed: boolean | undefined;

/** Whether the benchmark drives its load with wrk. */
export function usesWrk(): boolean {
  if (process.env.LYSS_BENCH_DRIVER === "autocannon") return false;
  installed ??= !spawnSync("wrk", ["--version"], { stdio: "ignore" }).error;
  return installed;
}

/** What one wrk run answered. */
export interface WrkResult {
  requests: number;
  seconds: number;
  /** Answers with a status of 400 or above (wrk counts no other). */
  non2xx: number;
  /** Connect, read and write errors and timeouts. */
  errors: number;
  /** Latency percentiles in milliseconds. */
  p50: number;
  p99: number;
}

// The script sends the request from the file beside it and prints its summary as one JSON line.
const SCRIPT = `
local file = io.open(os.getenv("LYSS_WRK_REQUEST"))
local request = file:read("*a")
file:close()
local headerText, body = request:match("^(.-)\\n\\n(.*)$")
wrk.method = "POST"
wrk.body = body
for name, value in headerText:gmatch("([^:\\n]+): ([^\\n]*)") do wrk.headers[name] = value end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\nLYSS_WRK {"requests":%d,"seconds":%.6f,"non2xx":%d,"errors":%d,"p50":%.3f,"p99":%.3f}\\n',
    summary.requests, summary.duration / 1e6, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
`;

const run = promisify(execFile);

/** Sends POST `url` with `body` and `headers` over `connections` connections for `seconds` seconds. */
export async function wrk(
  url: string,
  headers: Record<string, string>,
  body: string,
  connections: number,
  seconds: number,
): Promise<WrkResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lyss-wrk-"));
  try {
    const script = path.join(dir, "post.lua");
    const request = path.join(dir, "request");
    fs.writeFileSync(script, SCRIPT);
    const headerText = Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}`)
      .join("\n");
    fs.writeFileSync(request, `${headerText}\n\n${body}`);
    const threads = String(Math.min(2, connections));
    const { stdout } = await run(
      "wrk",
      ["-t", threads, "-c", String(connections), "-d", `${Math.max(1, Math.round(seconds))}s`, "--timeout", "30s", "-s", script, url],
      { env: { ...process.env, LYSS_WRK_REQUEST: request }, maxBuffer: 1 << 20 },
    );
    const line = stdout.split("\n").find((text) => text.startsWith("LYSS_WRK "));
    if (!line) throw new Error(`wrk printed no summary:\n${stdout}`);
    return JSON.parse(line.slice("LYSS_WRK ".length)) as WrkResult;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
