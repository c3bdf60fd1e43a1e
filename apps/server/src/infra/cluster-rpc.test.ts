import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const script = path.join(import.meta.dirname, "../test/busy-worker.ts");

describe("a worker's calls to the cluster primary", () => {
  it("take an answer that arrived while the worker was busy past the call's time limit", { timeout: 30_000 }, async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", script, "6000"], { timeout: 25_000 });
    expect(stdout.trim()).toBe("answered 42");
  });
});
