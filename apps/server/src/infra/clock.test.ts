import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isoString } from "./clock.ts";

describe("isoString", () => {
  it("writes every date as toISOString does, in any order, within a second and across seconds", () => {
    // Dates in runs within one second (as a busy gateway stamps them), jumping between seconds and years.
    const instant = fc.oneof(
      fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 }),
      fc.integer({ min: 1_764_000_000_000, max: 1_764_000_003_000 }),
      fc.constantFrom(0, -1, 999, 1000, -1000, 253_402_300_800_000, -62_167_219_200_001, 8.64e15, -8.64e15),
    );
    fc.assert(
      fc.property(fc.array(instant, { minLength: 1, maxLength: 40 }), (instants) => {
        for (const ms of instants) expect(isoString(ms)).toBe(new Date(ms).toISOString());
      }),
      { numRuns: 500 },
    );
  });

  it("throws for an invalid date, as toISOString does", () => {
    expect(() => isoString(Number.NaN)).toThrow(RangeError);
  });
});
