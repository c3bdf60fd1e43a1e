import { parentPort, workerData } from "node:worker_threads";
import { openSqlite } from "../../infra/db.ts";
import { type PackedBatch, unpackBatch } from "./batch-wire.ts";
import { writeUsageBatch } from "./batch-write.ts";

/**
 * The usage writer thread (SQLite): its own connection to the database file, writing each batch the
 * main thread sends, one at a time, and answering when it has landed or failed. better-sqlite3 blocks
 * the thread that calls it; here that is not the thread serving requests.
 */

export type WriterRequest = { id: number; batch: PackedBatch } | { id: number; close: true };
export type WriterReply = { id: number; error?: string };

const port = parentPort;
if (!port) throw new Error("the usage writer runs as a worker thread");
// Its statements are one batch's (bounded): their journals stay in memory (see openSqlite).
const db = openSqlite((workerData as { file: string }).file, { tempInMemory: true });

let queue = Promise.resolve();
port.on("message", (request: WriterRequest) => {
  queue = queue.then(async () => {
    let reply: WriterReply = { id: request.id };
    try {
      if ("close" in request) await db.close();
      else await writeUsageBatch(db.kysely, unpackBatch(request.batch));
    } catch (error) {
      reply = { id: request.id, error: (error as Error).message };
    }
    port.postMessage(reply);
    if ("close" in request) port.close();
  });
});
