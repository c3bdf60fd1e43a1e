import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { functionCounts } from "../../../../../bench/callgrind-functions.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lyss-callgrind-test-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("benchmark instructions by function", () => {
  it("names code at a reused address after the function written there last, and charges callees to their callers", () => {
    // V8 wrote `_storeHeader` at 0x1080, collected it, then wrote `relayBatch` over its place (from
    // 0x1000 to 0x1400); `other` sits apart.
    const perfMap = path.join(dir, "perf.map");
    fs.writeFileSync(
      perfMap,
      ["1080 200 JS:*_storeHeader node:_http_outgoing:1:1", "3000 100 JS:*other a.js:1:1", "1000 400 JS:*relayBatch b.js:1:1", ""].join(
        "\n",
      ),
    );
    const dump = path.join(dir, "callgrind.out");
    fs.writeFileSync(
      dump,
      [
        "events: Ir",
        "fn=(1) 0x0000000000001100",
        "0 70",
        "cfn=(2) 0x0000000000003010",
        "calls=1 0",
        "0 30",
        "fn=(3) 0x0000000000001300",
        "0 5",
        "fn=(2)",
        "0 30",
        "totals: 135",
        "",
      ].join("\n"),
    );
    const { self, inclusive } = functionCounts(dump, perfMap);
    expect(self.get("JS *relayBatch b.js:1:1")).toBe(75);
    expect(self.get("JS *other a.js:1:1")).toBe(30);
    expect(self.has("JS *_storeHeader node:_http_outgoing:1:1")).toBe(false);
    expect(inclusive.get("JS *relayBatch b.js:1:1")).toBe(105);
  });

  it("counts another event of a cache-simulated dump by its column, trailing zeros left out", () => {
    const dump = path.join(dir, "callgrind-cache.out");
    fs.writeFileSync(
      dump,
      ["events: Ir I1mr ILmr", "fn=(1) main", "0 100 4 2", "cfn=(2) leaf", "calls=1 0", "0 50 3 1", "fn=(2)", "0 50 3", "0 0 0 1", ""].join(
        "\n",
      ),
    );
    const misses = functionCounts(dump, undefined, "ILmr");
    expect(misses.self.get("main")).toBe(2);
    expect(misses.self.get("leaf")).toBe(1);
    expect(misses.inclusive.get("main")).toBe(3);
    expect(functionCounts(dump, undefined).self.get("leaf")).toBe(50);
    expect(() => functionCounts(dump, undefined, "DLmr")).toThrow(/no event DLmr/);
  });
});
