import cluster, { type Worker } from "node:cluster";
import type { Config } from "./config/env.ts";
import { assertSchemaNotNewer, migrateToLatest } from "./db/migrate.ts";
import { createClusterHub } from "./infra/cluster-rpc.ts";
import { serveSharedState } from "./infra/cluster-stores.ts";
import { tuneCollector } from "./infra/collector.ts";
import { loadMasterKey } from "./infra/crypto.ts";
import { openDatabase } from "./infra/db.ts";
import { createLogger } from "./infra/logger.ts";

/** The first wait before a dead worker is replaced; it doubles while replacements keep dying early. */
const RESTART_BASE_MS = 500;
const RESTART_MAX_MS = 30_000;
/** A worker that ran this long before dying is replaced after the shortest wait again. */
const STABLE_MS = 30_000;
/** How much longer than a worker's own shutdown bound the primary waits for the workers to exit. */
const SHUTDOWN_MARGIN_MS = 5000;

interface Slot {
  index: number;
  worker: Worker | undefined;
  startedAt: number;
  ready: boolean;
  crashes: number;
  restart: NodeJS.Timeout | undefined;
}

/**
 * glibc's malloc arenas for a worker started by a primary that was not (`npm start` and the `lyss`
 * command set the same): by default glibc gives each thread that allocates under contention an arena
 * of its own, up to eight per core, and memory freed in them (V8's compiler zones, the usage writer's
 * batches) mostly stays resident. With two, one worker held 2,000 open streams after a load run in
 * 23 MiB less.
 */
const MALLOC_ARENAS = "2";

/**
 * The cluster primary (`LYSS_WORKERS` > 1): migrates once (or only checks the schema), forks the
 * workers (`LYSS_WORKER_INDEX` 1..n) that share the port, replaces one that dies, and on SIGTERM or
 * SIGINT drains them all and exits 0 once they have exited (1 on a timeout or a failed drain). It
 * loads no HTTP server: it answers the workers' calls (metrics; without Redis, the shared counters
 * and the bus relay) and nothing else.
 */
export async function runPrimary(config: Config, options: { migrate: boolean }): Promise<void> {
  tuneCollector(config);
  const logger = createLogger(config.logLevel).child({ role: "primary" });
  // The master key file and the schema are made here once, so the workers do not race for them.
  loadMasterKey(config.secretKey, config.dataDir);
  const db = await openDatabase(config);
  try {
    if (options.migrate) await migrateToLatest(db);
    else await assertSchemaNotNewer(db);
  } finally {
    await db.close();
  }

  const hub = createClusterHub(logger);
  hub.handle("metrics", async () => (await import("./infra/cluster-metrics.ts")).aggregateWorkerMetrics());
  if (!config.redisUrl) serveSharedState(hub);

  const slots = new Map<number, Slot>();
  let anyReady = false;
  let announced = false;
  let stopping = false;
  let failed = false;
  const live = () => [...slots.values()].filter((slot) => slot.worker);

  function fork(slot: Slot) {
    slot.restart = undefined;
    const worker = cluster.fork({ LYSS_WORKER_INDEX: String(slot.index), MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? MALLOC_ARENAS });
    Object.assign(slot, { worker, startedAt: Date.now(), ready: false });
    worker.on("error", (error) => logger.warn({ err: error, worker: slot.index }, "cluster worker channel error"));
    worker.on("exit", (code, signal) => exited(slot, worker, code, signal));
  }

  function exited(slot: Slot, worker: Worker, code: number | null, signal: string | null) {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    const details = { worker: slot.index, pid: worker.process.pid, code, signal };
    if (stopping) {
      if (slot.ready && code !== 0) failed = true;
      logger.info(details, `worker ${slot.index} exited`);
      if (live().length === 0) finish();
      return;
    }
    if (!slot.ready && !anyReady) {
      logger.error(details, `worker ${slot.index} exited before it was listening; stopping`);
      failed = true;
      stop("a worker failed to start");
      return;
    }
    slot.crashes = Date.now() - slot.startedAt >= STABLE_MS ? 1 : slot.crashes + 1;
    const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (slot.crashes - 1));
    logger.error({ ...details, restart_in_ms: delay }, `worker ${slot.index} exited unexpectedly; starting a new one in ${delay} ms`);
    slot.restart = setTimeout(() => fork(slot), delay);
  }

  function stop(reason: string) {
    if (stopping) return;
    stopping = true;
    logger.info({ reason }, "shutting down: draining every worker");
    for (const slot of slots.values()) clearTimeout(slot.restart);
    for (const slot of live()) {
      const worker = slot.worker as Worker;
      // A worker still starting has no drain handler yet; SIGTERM ends it before it serves.
      if (slot.ready) hub.drain(worker);
      else worker.process.kill("SIGTERM");
    }
    setTimeout(() => {
      logger.error({ timeout_ms: config.shutdownTimeoutMs + SHUTDOWN_MARGIN_MS }, "workers did not exit in time; killing them");
      for (const slot of live()) slot.worker?.process.kill("SIGKILL");
      process.exit(1);
    }, config.shutdownTimeoutMs + SHUTDOWN_MARGIN_MS);
    if (live().length === 0) finish();
  }

  function finish() {
    hub.close();
    if (failed) logger.error("stopped: a worker failed to start or to shut down cleanly");
    else logger.info("every worker has stopped; shut down cleanly");
    process.exit(failed ? 1 : 0);
  }

  hub.onReady((worker, index) => {
    const slot = slots.get(index);
    if (!slot || slot.worker !== worker) return;
    slot.ready = true;
    anyReady = true;
    if (!announced && [...slots.values()].every((each) => each.ready)) {
      announced = true;
      logger.info({ workers: slots.size }, `Lyss is serving with ${slots.size} workers`);
    }
  });
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));

  logger.info({ workers: config.workers, pid: process.pid, redis: Boolean(config.redisUrl) }, `starting ${config.workers} workers`);
  for (let index = 1; index <= config.workers; index++) {
    const slot: Slot = { index, worker: undefined, startedAt: 0, ready: false, crashes: 0, restart: undefined };
    slots.set(index, slot);
    fork(slot);
  }
}
