import { describe, expect, it } from "vitest";
import { type CpuProfile, flameGraph } from "../../../../../bench/flamegraph.ts";

const frame = (functionName: string, url = "") => ({ functionName, url, lineNumber: 0, columnNumber: 0 });

/** (root) → a → b<T>, (root) → c (Node's own), (root) → (idle); 10 µs a sample. */
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame("(root)"), children: [2, 4, 5] },
    { id: 2, callFrame: frame("a", "file:///srv/app/a.js"), children: [3] },
    { id: 3, callFrame: frame("b<T>", "file:///srv/node_modules/pkg/b.js") },
    { id: 4, callFrame: frame("c", "node:events") },
    { id: 5, callFrame: frame("(idle)") },
  ],
  samples: [3, 3, 2, 4, 5, 5, 5],
  timeDeltas: [10, 10, 10, 10, 10, 10, 10],
};

describe("benchmark flame graphs", () => {
  it("draws each call path as wide as its time, idle time left out, with folded stacks of each path's own time", () => {
    const { svg, folded } = flameGraph(profile, "test");
    // 40 µs of CPU over 1,200 pixels: a with what it called 30 µs, c 10 µs.
    expect(svg).toContain("test — 0.00 s of CPU sampled");
    expect(svg).toMatch(/<title>a [^<]*\(app\): 0\.0 ms, 75\.00 %<\/title><rect width="900\.0"/);
    expect(svg).toMatch(/<title>b&lt;T&gt; [^<]*\(package\): 0\.0 ms, 50\.00 %<\/title><rect width="600\.0"/);
    expect(svg).toMatch(/<title>c node:events:1 \(node\): 0\.0 ms, 25\.00 %<\/title><rect width="300\.0"/);
    expect(svg).not.toContain("(idle)");
    // b is drawn above a (callees over callers), a above the root.
    const y = (name: string) => Number(new RegExp(`translate\\([\\d.]+,(\\d+)\\)"><title>${name} `).exec(svg)?.[1]);
    expect(y("all")).toBeGreaterThan(y("a"));
    expect(y("a")).toBeGreaterThan(y("b&lt;T&gt;"));
    const lines = folded.trim().split("\n").sort();
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^all;a [^;]*a\.js:1 10$/);
    expect(lines[1]).toMatch(/^all;a [^;]*a\.js:1;b<T> pkg:1 20$/);
    expect(lines[2]).toBe("all;c node:events:1 10");
  });
});
