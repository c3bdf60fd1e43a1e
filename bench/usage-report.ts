import os from "node:os";
import type { BenchResult } from "./usage-stats.ts";

/** The Markdown report of a usage statistics benchmark run, for bench/RESULTS.md. */

function machine() {
  const cpus = os.cpus();
  const memory = Math.round(os.totalmem() / 2 ** 30);
  const load = os
    .loadavg()
    .map((value) => value.toFixed(1))
    .join(" / ");
  return (
    `${cpus[0]?.model.trim() ?? "unknown CPU"} × ${cpus.length}, ${memory} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version}; ` +
    `load average at the end ${load} (other work shares the machine when it is above the CPU count)`
  );
}

/** The "Usage statistics" section appended to bench/RESULTS.md. */
export function resultsSection(result: BenchResult, command: string, date = new Date()): string {
  const lines = [
    `## Usage statistics (${date.toISOString().slice(0, 16).replace("T", " ")} UTC)`,
    "",
    `- Command: \`${command}\``,
    `- Machine: ${machine()}`,
    `- Data: ${result.records.toLocaleString("en")} usage records over ${result.shape.days} days (${result.shape.users} users, ${result.shape.tokens} tokens, ` +
      `${result.shape.models} models, ${result.shape.channels} channels) → ${result.rollupRows.toLocaleString("en")} rollup rows; ` +
      `${result.raw.toLocaleString("en")} raw usage_logs rows for the baseline${result.raw < result.records ? " (a sample: the baseline scans fewer rows than the rollups stand for)" : ""}.`,
    "- Rollups: the stats API through the real app (`buildApp` + `inject`, HTTP handling included). " +
      "Baseline: the same question as one SQL aggregate over raw usage_logs (no HTTP, no serialisation).",
    "",
    "| database | endpoint | rollups p50 | rollups p95 | raw usage_logs p50 | raw usage_logs p95 | samples |",
    "|---|---|---:|---:|---:|---:|---|",
  ];
  for (const backend of result.backends) {
    for (const endpoint of backend.endpoints) {
      lines.push(
        `| ${backend.backend} | ${endpoint.name} | ${endpoint.rollups.p50} ms | ${endpoint.rollups.p95} ms | ${endpoint.baseline.p50} ms | ` +
          `${endpoint.baseline.p95} ms | ${endpoint.rollups.samples} / ${endpoint.baseline.samples} |`,
      );
    }
  }
  const compared = result.backends.flatMap((backend) => backend.endpoints).filter((endpoint) => endpoint.matches !== null);
  if (compared.length > 0) {
    const differing = compared.filter((endpoint) => !endpoint.matches).map((endpoint) => endpoint.name);
    lines.push(
      "",
      differing.length === 0
        ? "Every answer from the rollups equals the one from raw usage_logs."
        : `Answers differ: ${differing.join(", ")}.`,
    );
  }
  lines.push(
    "",
    `Generation took ${result.generateMs} ms; loading ${result.backends.map((backend) => `${backend.backend} ${backend.loadMs} ms`).join(", ")}.`,
    "",
  );
  return lines.join("\n");
}
