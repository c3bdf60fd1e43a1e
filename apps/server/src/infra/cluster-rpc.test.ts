import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { isOverdue } from "./cluster-rpc.ts";

const run = promisify(execFile);
const script = path.join(import.meta.dirname, "../test/busy-worker.ts");
const outcome = async (mode: string, ms: number) =>
  (await run(process.execPath, ["--import", "tsx", script, mode, String(ms)], { timeout: 25_000 })).stdout.trim();

describe("a worker's calls to the cluster primary", () => {
  it("take an answer that arrived while the worker was busy past the call's time limit", { timeout: 30_000 }, async () => {
    expect(await outcome("busy", 6000)).toBe("answered 42");
  });

  it("wait past the time limit for a primary that is behind but answering", { timeout: 30_000 }, async () => {
    expect(await outcome("behind", 7500)).toBe("answered 42");
  });

  it("fail when the primary has answered nothing for the time limit", { timeout: 30_000 }, async () => {
    const started = Date.now();
    expect(await outcome("silent", 0)).toMatch(/^the cluster primary did not answer never \(waited \d+ ms\)$/);
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(5000);
    expect(waited).toBeLessThan(15_000);
  });

  it("wait for a change the primary applies (a settlement) however long the primary is silent, within the outer limit", {
    timeout: 30_000,
  }, async () => {
    expect(await outcome("patient", 7000)).toBe("answered 42");
  });

  it("count the time limit from the later of the call and the primary's last answer, within an outer limit", () => {
    expect(isOverdue(0, 0, 4999)).toBe(false);
    expect(isOverdue(0, 0, 5000)).toBe(true);
    expect(isOverdue(0, 4000, 8999)).toBe(false);
    expect(isOverdue(0, 4000, 9000)).toBe(true);
    expect(isOverdue(0, 29_000, 29_999)).toBe(false);
    expect(isOverdue(0, 29_000, 30_000)).toBe(true);
    // A patient call: only the outer limit.
    expect(isOverdue(0, 0, 29_999, true)).toBe(false);
    expect(isOverdue(0, 0, 30_000, true)).toBe(true);
  });
});
