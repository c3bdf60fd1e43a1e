import { describe, expect, it } from "vitest";
import { windowBucket } from "./windows.ts";

describe("windowBucket", () => {
  it("moves to the next day at local midnight, even right after answering from its memo", () => {
    const zone = "Asia/Shanghai"; // UTC+8: local midnight is 16:00 UTC
    const before = windowBucket("day", new Date("2026-11-23T15:59:59.999Z"), zone);
    expect(before).toEqual({ bucket: "2026-11-23", resetsAt: "2026-11-23T16:00:00.000Z" });
    expect(windowBucket("day", new Date("2026-11-23T15:00:00.000Z"), zone)).toEqual(before);
    expect(windowBucket("day", new Date("2026-11-23T16:00:00.000Z"), zone)).toEqual({
      bucket: "2026-11-24",
      resetsAt: "2026-11-24T16:00:00.000Z",
    });
    // Going back in time (a test clock) answers the earlier day again.
    expect(windowBucket("day", new Date("2026-11-23T10:00:00.000Z"), zone)).toEqual(before);
  });

  it("keeps zones and windows apart", () => {
    const at = new Date("2026-11-30T20:00:00.000Z");
    expect(windowBucket("day", at, "UTC").bucket).toBe("2026-11-30");
    expect(windowBucket("day", at, "Asia/Tokyo").bucket).toBe("2026-12-01");
    expect(windowBucket("month", at, "UTC")).toEqual({ bucket: "2026-11", resetsAt: "2026-12-01T00:00:00.000Z" });
    expect(windowBucket("month", at, "Asia/Tokyo")).toEqual({ bucket: "2026-12", resetsAt: "2026-12-31T15:00:00.000Z" });
    expect(windowBucket("total", at, "UTC")).toEqual({ bucket: "total", resetsAt: null });
  });

  it("follows daylight saving time: a 23-hour local day still ends at local midnight", () => {
    const zone = "America/New_York"; // 2026-03-08 springs forward
    const day = windowBucket("day", new Date("2026-03-08T12:00:00.000Z"), zone);
    expect(day).toEqual({ bucket: "2026-03-08", resetsAt: "2026-03-09T04:00:00.000Z" });
    expect(windowBucket("day", new Date("2026-03-09T03:59:59.000Z"), zone).bucket).toBe("2026-03-08");
    expect(windowBucket("day", new Date("2026-03-09T04:00:00.000Z"), zone).bucket).toBe("2026-03-09");
  });
});
