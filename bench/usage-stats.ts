import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import pg from "pg";
import { buildApp, type LyssApp } from "../apps/server/src/app.ts";
import { loadConfig } from "../apps/server/src/config/env.ts";
import { HOUR_MS } from "../apps/server/src/modules/usage/rollups.ts";
import { entitiesOf, generateUsage, rollupRowsOf, type UsageShape } from "./usage-generator.ts";
import { postgresSink, sqliteSink, type UsageSink } from "./usage-load.ts";
import { type BenchQuery, baselineOf, type Comparable, compare, fromAnswer, queriesOf } from "./usage-queries.ts";
import { resultsSection } from "./usage-report.ts";

/**
 * Usage statistics benchmark: N usage records' worth of rollups (plus a sample of raw usage_logs) in a
 * fresh SQLite file, and in PostgreSQL when TEST_DATABASE_URL is set; then the stats endpoints are timed
 * through the real app (buildApp + inject) against the same questions answered from raw usage_logs.
 *
 *   npx tsx bench/usage-stats.ts [--records N] [--raw N | --raw-all]
 */

export interface BenchOptions {
  records: number;
  /** Raw usage_logs rows to write (default: min(records, 1,000,000)); `rawAll` writes all of them. */
  raw?: number;
  rawAll?: boolean;
  /** A PostgreSQL URL whose server may create and drop a scratch database. */
  databaseUrl?: string | undefined;
  iterations?: number;
  baselineIterations?: number;
  /** Time per endpoint and side after which sampling stops (once 3 samples exist). */
  budgetMs?: number;
  shape?: Partial<Omit<UsageShape, "records">>;
  log?: (line: string) => void;
  /** Stops the run at the next step (Ctrl-C); what it made is still removed. */
  signal?: AbortSignal;
}

export interface Timing {
  p50: number;
  p95: number;
  samples: number;
}

export interface EndpointResult {
  name: string;
  url: string;
  rollups: Timing;
  baseline: Timing;
  /** With every record raw: whether both answers agree (null when the raw rows are a sample). */
  matches: boolean | null;
}

export interface BenchResult {
  records: number;
  raw: number;
  rollupRows: number;
  shape: UsageShape;
  generateMs: number;
  workDir: string;
  backends: { backend: "sqlite" | "postgres"; loadMs: number; endpoints: EndpointResult[] }[];
}

interface Target {
  backend: "sqlite" | "postgres";
  built: LyssApp;
  token: string;
  sink: UsageSink;
  dropDatabase?: () => Promise<void>;
}

function percentile(sorted: number[], fraction: number) {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return Math.round((sorted[index] ?? 0) * 100) / 100;
}

async function time(run: () => Promise<unknown>, iterations: number, budgetMs: number): Promise<Timing> {
  const samples: number[] = [];
  const started = performance.now();
  while (samples.length < iterations && (samples.length < 3 || performance.now() - started < budgetMs)) {
    const before = performance.now();
    await run();
    samples.push(performance.now() - before);
  }
  samples.sort((left, right) => left - right);
  return { p50: percentile(samples, 0.5), p95: percentile(samples, 0.95), samples: samples.length };
}

async function adminQuery(url: string, text: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

async function openTarget(backend: Target["backend"], workDir: string, adminUrl: string | undefined): Promise<Target> {
  const dataDir = path.join(workDir, backend);
  const env: Record<string, string> = {
    LYSS_DATA_DIR: dataDir,
    LOG_LEVEL: "silent",
    NODE_ENV: "production",
    LYSS_ACCESS_TOKEN_TTL: "86400",
  };
  let dropDatabase: (() => Promise<void>) | undefined;
  if (backend === "postgres" && adminUrl) {
    const name = `lyss_bench_${randomBytes(6).toString("hex")}`;
    await adminQuery(adminUrl, `create database ${name}`);
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    env.DATABASE_URL = url.toString();
    dropDatabase = () => adminQuery(adminUrl, `drop database if exists ${name} with (force)`);
  }
  try {
    const built = await buildApp({ config: loadConfig(env) });
    // Retention would delete the oldest generated records in the middle of the run.
    await built.services.usageRetention.stop();
    const setup = await built.app.inject({
      method: "POST",
      url: "/api/v1/auth/setup",
      payload: { email: "bench@example.com", password: "bench-password-1", name: "Bench" },
    });
    if (setup.statusCode !== 201) throw new Error(`setup failed: ${setup.statusCode} ${setup.body}`);
    const { access_token: token, tenant } = setup.json() as { access_token: string; tenant: { id: string } };
    const sink = env.DATABASE_URL ? await postgresSink(env.DATABASE_URL, tenant.id) : sqliteSink(path.join(dataDir, "lyss.db"), tenant.id);
    return { backend, built, token, sink, ...(dropDatabase ? { dropDatabase } : {}) };
  } catch (error) {
    await dropDatabase?.();
    throw error;
  }
}

async function timeEndpoint(
  target: Target,
  query: BenchQuery,
  options: Required<Pick<BenchOptions, "iterations" | "baselineIterations" | "budgetMs">>,
  exact: boolean,
) {
  const { app } = target.built;
  const headers = { authorization: `Bearer ${target.token}`, "x-tenant-id": target.sink.tenantId };
  const call = async () => {
    const response = await app.inject({ method: "GET", url: query.url, headers });
    if (response.statusCode !== 200) throw new Error(`${query.url}: ${response.statusCode} ${response.body}`);
    return response.json();
  };
  const first = await call();
  const db = target.built.infra.db.kysely;
  const baseline = () => baselineOf(db, target.sink.tenantId, query, first);
  const expected: Comparable = await baseline();
  const rollups = await time(call, options.iterations, options.budgetMs);
  const raw = await time(baseline, options.baselineIterations, options.budgetMs);
  return { name: query.name, url: query.url, rollups, baseline: raw, matches: exact ? compare(fromAnswer(query, first), expected) : null };
}

export async function runUsageStatsBench(options: BenchOptions): Promise<BenchResult> {
  const log = options.log ?? (() => undefined);
  const check = () => options.signal?.throwIfAborted();
  const shape: UsageShape = {
    days: 90,
    users: 20,
    tokens: 50,
    models: 15,
    channels: 10,
    end: Math.floor(Date.now() / HOUR_MS) * HOUR_MS,
    seed: 20_251_031,
    ...options.shape,
    records: options.records,
  };
  const raw = options.rawAll ? options.records : Math.min(options.records, options.raw ?? 1_000_000);
  const rawEvery = raw > 0 ? Math.max(1, Math.floor(options.records / raw)) : Number.MAX_SAFE_INTEGER;
  const timing = {
    iterations: options.iterations ?? 30,
    baselineIterations: options.baselineIterations ?? 10,
    budgetMs: options.budgetMs ?? 15_000,
  };
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "lyss-bench-"));
  const targets: Target[] = [];
  try {
    targets.push(await openTarget("sqlite", workDir, undefined));
    if (options.databaseUrl) targets.push(await openTarget("postgres", workDir, options.databaseUrl));
    const entities = entitiesOf(shape);
    const loadMs = new Map<Target, number>(targets.map((target) => [target, 0]));
    const started = performance.now();
    const generated = await generateUsage(shape, entities, rawEvery, async (rows) => {
      check();
      for (const target of targets) {
        const before = performance.now();
        await target.sink.writeRaw(rows);
        loadMs.set(target, (loadMs.get(target) ?? 0) + performance.now() - before);
      }
    });
    const generateMs = performance.now() - started - [...loadMs.values()].reduce((sum, value) => sum + value, 0);
    log(
      `generated ${shape.records.toLocaleString("en")} records (${generated.raw.toLocaleString("en")} raw) in ${Math.round(generateMs)} ms`,
    );
    let rollupRows = 0;
    for (const target of targets) {
      const before = performance.now();
      const rows = rollupRowsOf(generated, target.sink.tenantId);
      rollupRows = rows.length;
      await target.sink.writeRollups(rows);
      await target.sink.finish();
      loadMs.set(target, (loadMs.get(target) ?? 0) + performance.now() - before);
      log(
        `${target.backend}: loaded ${rows.length.toLocaleString("en")} rollup rows and the raw rows in ${Math.round(loadMs.get(target) ?? 0)} ms`,
      );
    }
    const queries = queriesOf(shape, entities);
    const backends: BenchResult["backends"] = [];
    for (const target of targets) {
      const endpoints: EndpointResult[] = [];
      for (const query of queries) {
        check();
        const result = await timeEndpoint(target, query, timing, generated.raw === shape.records);
        log(
          `${target.backend} ${query.name}: rollups p50 ${result.rollups.p50} ms p95 ${result.rollups.p95} ms; raw p50 ${result.baseline.p50} ms p95 ${result.baseline.p95} ms` +
            (result.matches === null ? "" : result.matches ? "; answers agree" : "; ANSWERS DIFFER"),
        );
        endpoints.push(result);
      }
      backends.push({ backend: target.backend, loadMs: Math.round(loadMs.get(target) ?? 0), endpoints });
    }
    return { records: shape.records, raw: generated.raw, rollupRows, shape, generateMs: Math.round(generateMs), workDir, backends };
  } finally {
    for (const target of targets) {
      await target.sink.close().catch(() => undefined);
      await target.built.app.close().catch(() => undefined);
      await target.dropDatabase?.().catch(() => undefined);
    }
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------
// The command line

function argument(args: string[], name: string): string | undefined {
  const index = args.indexOf(name);
  return index >= 0 ? args[index + 1] : undefined;
}

async function main() {
  const args = process.argv.slice(2);
  const records = Number(argument(args, "--records") ?? 10_000_000);
  const raw = argument(args, "--raw");
  if (!Number.isInteger(records) || records < 1) throw new Error("--records takes a positive integer");
  const interrupted = new AbortController();
  process.once("SIGINT", () => interrupted.abort(new Error("interrupted; cleaning up")));
  process.once("SIGTERM", () => interrupted.abort(new Error("terminated; cleaning up")));
  const result = await runUsageStatsBench({
    signal: interrupted.signal,
    records,
    ...(raw === undefined ? {} : { raw: Number(raw) }),
    rawAll: args.includes("--raw-all"),
    databaseUrl: process.env.TEST_DATABASE_URL,
    log: (line) => console.log(line),
  });
  const command =
    `npx tsx bench/usage-stats.ts ${args.join(" ")}`.trim() + (process.env.TEST_DATABASE_URL ? " (with TEST_DATABASE_URL)" : "");
  const section = resultsSection(result, command);
  console.log(`\n${section}`);
  const file = path.join(path.dirname(new URL(import.meta.url).pathname), "RESULTS.md");
  if (!fs.existsSync(file)) fs.writeFileSync(file, "# Benchmark results\n\n");
  fs.appendFileSync(file, `${section}\n`);
  console.log(`appended to ${file}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
