import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { resultsSection } from "../../../../../bench/usage-report.ts";
import { runUsageStatsBench } from "../../../../../bench/usage-stats.ts";
import { TEST_DATABASE_URL } from "../../test/test-app.ts";

/** A small run of the usage statistics benchmark (bench/usage-stats.ts), so the script cannot rot. It writes no RESULTS.md. */
describe("usage statistics benchmark", () => {
  it("generates 20,000 records' rollups, times every endpoint, agrees with raw usage_logs and cleans up", {
    timeout: 120_000,
  }, async () => {
    const result = await runUsageStatsBench({
      records: 20_000,
      rawAll: true,
      databaseUrl: TEST_DATABASE_URL,
      iterations: 3,
      baselineIterations: 3,
      budgetMs: 2000,
      shape: { days: 10 },
    });
    expect(result.raw).toBe(20_000);
    expect(result.rollupRows).toBeGreaterThan(1000);
    expect(result.backends.map((backend) => backend.backend)).toEqual(TEST_DATABASE_URL ? ["sqlite", "postgres"] : ["sqlite"]);
    for (const backend of result.backends) {
      expect(backend.endpoints).toHaveLength(8);
      for (const endpoint of backend.endpoints) {
        expect(endpoint.matches, `${backend.backend} ${endpoint.name}`).toBe(true);
        expect(endpoint.rollups.samples).toBe(3);
        expect(endpoint.rollups.p95).toBeGreaterThanOrEqual(endpoint.rollups.p50);
        expect(endpoint.baseline.p50).toBeGreaterThan(0);
      }
    }
    expect(fs.existsSync(result.workDir)).toBe(false);
    const section = resultsSection(result, "npx tsx bench/usage-stats.ts --records 20000 --raw-all");
    expect(section).toContain("## Usage statistics");
    expect(section).toContain("top models by requests");
  });
});
