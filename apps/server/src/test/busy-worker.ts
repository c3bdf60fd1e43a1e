import cluster from "node:cluster";
import { createClusterHub, primaryLink } from "../infra/cluster-rpc.ts";
import { createLogger } from "../infra/logger.ts";

/**
 * A primary and one worker (`node --import tsx busy-worker.ts <block ms>`): the worker calls the
 * primary, then keeps its event loop busy for longer than a call's time limit while the answer
 * arrives. Prints the call's outcome ("answered 42" or the error) and exits.
 */
const blockMs = Number(process.argv[2] ?? 6000);

if (cluster.isPrimary) {
  const hub = createClusterHub(createLogger("silent"));
  hub.handle("answer", async () => 42);
  const worker = cluster.fork({ LYSS_WORKER_INDEX: "1" });
  worker.on("message", (message: { outcome?: string }) => {
    if (message.outcome === undefined) return;
    process.stdout.write(`${message.outcome}\n`);
    worker.kill();
    hub.close();
  });
} else {
  const link = primaryLink();
  if (!link) throw new Error("no link to the primary");
  const outcome = link.call<number>("answer").then(
    (value) => `answered ${value}`,
    (error: Error) => error.message,
  );
  // After the call has gone out (it is sent when this turn ends), the worker is busy.
  setImmediate(() => {
    const until = Date.now() + blockMs;
    while (Date.now() < until) {
      // busy: a burst of work on the event loop
    }
  });
  void outcome.then((text) => process.send?.({ outcome: text }));
}
