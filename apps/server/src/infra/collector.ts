import v8 from "node:v8";

/**
 * V8's collector settings for every Lyss process that serves (the one process, each worker, and the
 * cluster primary, which keeps the shared counters when no Redis is set). `--single-threaded-gc` cannot
 * be set here: V8 takes it only on Node's command line (see `npm start`).
 */
export function tuneCollector(options: { heapGrowthPercent: number }) {
  // V8 lets the old space grow to several times the live heap under load and keeps it after; a server
  // holding thousands of open streams is better served by collecting sooner (RSS, for little CPU).
  if (options.heapGrowthPercent > 0) v8.setFlagsFromString(`--heap-growing-percent=${options.heapGrowthPercent}`);
  // V8 allocates straight into the old space from an allocation site once every object it made in one
  // young-generation cycle survived it. Under streamed load some sites of the request path pass that
  // test; their objects, allocated old, then keep each request's young objects alive through every
  // scavenge until a full collection, so each request promoted 5-7 KB instead of under 1 KB, scavenges
  // cost three to four times as much and full collections came every second, for good (plain requests
  // included). A gateway's request objects all die young: their sites are never pretenured.
  v8.setFlagsFromString("--no-allocation-site-pretenuring");
}
