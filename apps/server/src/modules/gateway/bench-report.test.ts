import { describe, expect, it } from "vitest";
import { type Measured, renderSection } from "../../../../../bench/gateway-report.ts";

const mib = (rss: number, hwm: number) => ({ rss, hwm });

/** A run's measurements with every figure the section reads, the streams' as given. */
function measured(streams: Measured["streams"]): Measured {
  return {
    date: new Date("2026-12-07T02:00:00Z"),
    short: true,
    loadBefore: [0.1, 0.2, 0.3],
    loadAfter: [1, 1, 1],
    repeats: 1,
    durationS: 2,
    sliceS: 2,
    warmup: { runs: 1, seconds: 1 },
    driver: "autocannon",
    connections: [],
    runs: new Map(),
    ttfbs: new Map([
      ["upstream", [1]],
      ["bare", [1.2]],
      ["lyss", [1.5]],
    ]),
    ttfbSamples: 1,
    fixed: new Map(),
    fixedRate: 500,
    readyMs: { fresh: [450], existing: [430] },
    memory: { idle: mib(150, 150), afterLoad: mib(240, 250) },
    streams,
    stops: [{ name: "lyss", code: 0, signal: null, ms: 120 }],
    accounting: { requests: 10, cost: 20 },
  };
}

const stream = (opening: { rss: number; hwm: number }, during: { rss: number; hwm: number }) => ({
  label: "fresh",
  count: 2000,
  stoppedFirst: 0,
  started: 2000,
  failed: 0,
  before: mib(200, 205),
  opening,
  during,
});

describe("the gateway benchmark's report", () => {
  it("gives the streams' peak as the highest of the kernel's high-water marks and the readings", () => {
    // The kernel raises VmHWM lazily: here both marks read below the reading taken 2 s after the streams opened.
    const { section } = renderSection(measured([stream(mib(235.3, 235.1), mib(230, 235.2))]));
    expect(section).toContain("235.3 MiB 2 s after the last one opened, peak 235.3 MiB");
    // A mark above every reading is the peak.
    const { section: marked } = renderSection(measured([stream(mib(240, 251.4), mib(238, 244))]));
    expect(marked).toContain("peak 251.4 MiB");
    expect(marked).toContain("**238.0 MiB (250 MB) RSS with 2000 of 2000 concurrent streams open**");
  });
});
