import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { Kysely } from "kysely";
import type { Database } from "../../db/schema.ts";
import { type PackedBatch, unpackBatch } from "./batch-wire.ts";
import { writeUsageBatch } from "./batch-write.ts";
import type { WriterReply, WriterRequest } from "./writer-thread.ts";

/** Where usage batches go: written here, or handed to a writer thread. */
export interface BatchSink {
  /** Resolves once the batch has landed; rejects when it did not (nothing of it landed). */
  write(batch: PackedBatch): Promise<void>;
  close(): Promise<void>;
}

/** Writes on the caller's own connection (PostgreSQL: the driver's I/O does not block the thread). */
export function inlineSink(db: Kysely<Database>): BatchSink {
  return { write: (batch) => writeUsageBatch(db, unpackBatch(batch)), close: async () => {} };
}

/**
 * The writer thread's module: the bundle's `usage-writer.js` beside this chunk in production, the
 * TypeScript source through tsx otherwise.
 */
export function startWriter(file: string): Worker {
  const here = import.meta.url;
  // A batch is a few hundred kilobytes: a small young generation keeps the thread's memory down (V8's
  // default costs about 16 MiB more). At 2 MB the thread collected in the middle of each batch, about
  // 3 µs more per record than at 4 MB, where the resident memory with 2,000 open streams did not move
  // beyond its noise.
  const options = { workerData: { file }, resourceLimits: { maxYoungGenerationSizeMb: 4 } };
  if (!here.endsWith(".ts")) return new Worker(new URL("./usage-writer.js", here), options);
  // From source, the thread registers tsx's loader first (a worker's execArgv cannot --import it).
  const manifestPath = createRequire(here).resolve("tsx/package.json");
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { exports: Record<string, { import: { default: string } }> };
  const api = pathToFileURL(path.join(path.dirname(manifestPath), manifest.exports["./esm/api"]?.import.default ?? "")).href;
  const entry = new URL("./writer-thread.ts", here).href;
  const boot = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { ...options, eval: true });
}

/**
 * Writes on a thread of its own with its own connection (SQLite: better-sqlite3 blocks the thread that
 * calls it, and a batch of 2,000 records takes milliseconds). The thread starts with the first batch; if
 * it dies, the batch in flight fails (and is retried by the recorder) and the next batch starts another.
 * `start` makes a thread (tests keep a hold of theirs).
 */
export function threadSink(file: string, start: (file: string) => Worker = startWriter): BatchSink {
  type Waiting = Map<number, { resolve: () => void; reject: (error: Error) => void }>;
  let current: { thread: Worker; waiting: Waiting } | undefined;
  let nextId = 1;

  function writer() {
    if (current) return current;
    const thread = start(file);
    // Each thread answers for its own requests: one that ends fails only what it was sent.
    const waiting: Waiting = new Map();
    const started = { thread, waiting };
    thread.on("message", (reply: WriterReply) => {
      const entry = waiting.get(reply.id);
      waiting.delete(reply.id);
      // An idle thread does not keep the process alive; one with a batch in flight does.
      if (waiting.size === 0) thread.unref();
      if (reply.error === undefined) entry?.resolve();
      else entry?.reject(new Error(reply.error));
    });
    const fail = (error: Error) => {
      if (current === started) current = undefined;
      for (const entry of waiting.values()) entry.reject(error);
      waiting.clear();
    };
    thread.on("error", fail);
    thread.on("exit", (code) => fail(new Error(`the usage writer thread exited (code ${code})`)));
    current = started;
    return started;
  }

  function send(request: Omit<WriterRequest, "id">, target: { thread: Worker; waiting: Waiting }): Promise<void> {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      target.waiting.set(id, { resolve, reject });
      target.thread.ref();
      target.thread.postMessage({ ...request, id });
    });
  }

  return {
    // Copied across, not transferred: a batch that fails is kept by the recorder to be sent again.
    write: (batch) => send({ batch }, writer()),
    /** Ends the thread once what it was sent has landed; a batch written meanwhile starts another. */
    async close() {
      const closing = current;
      if (!closing) return;
      current = undefined;
      await send({ close: true }, closing).catch(() => undefined);
      await closing.thread.terminate();
    },
  };
}
