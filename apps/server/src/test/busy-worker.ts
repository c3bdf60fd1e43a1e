import cluster from "node:cluster";
import { createClusterHub, primaryLink } from "../infra/cluster-rpc.ts";
import { createLogger } from "../infra/logger.ts";

/**
 * A primary and one worker (`node --import tsx busy-worker.ts <mode> <ms>`), printing the outcome of
 * one call ("answered 42" or the error) and exiting:
 * - `busy`: the worker calls the primary, then keeps its own event loop busy for `ms` while the answer
 *   arrives;
 * - `behind`: the primary answers the call after `ms` (a primary working through a backlog) while it
 *   answers the worker's other calls, made every second, at once;
 * - `silent`: the primary never answers the call, nor anything else;
 * - `patient`: the call is a change the primary applies (`apply`), answered after `ms` while the primary
 *   answers nothing else.
 */
const mode = process.argv[2] ?? "busy";
const ms = Number(process.argv[3] ?? 6000);

if (cluster.isPrimary) {
  const hub = createClusterHub(createLogger("silent"));
  hub.handle("answer", async () => 42);
  hub.handle("late", () => new Promise((resolve) => setTimeout(() => resolve(42), ms)));
  hub.handle("never", () => new Promise(() => {}));
  const worker = cluster.fork({ LYSS_WORKER_INDEX: "1" });
  worker.on("message", (message: { outcome?: string }) => {
    if (message.outcome === undefined) return;
    process.stdout.write(`${message.outcome}\n`);
    worker.kill();
    hub.close();
    process.exit(0);
  });
} else {
  const link = primaryLink();
  if (!link) throw new Error("no link to the primary");
  const method = mode === "behind" || mode === "patient" ? "late" : mode === "silent" ? "never" : "answer";
  const outcome = (mode === "patient" ? link.apply<number>(method) : link.call<number>(method)).then(
    (value) => `answered ${value}`,
    (error: Error) => error.message,
  );
  if (mode === "busy") {
    // After the call has gone out (it is sent when this turn ends), the worker is busy.
    setImmediate(() => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        // busy: a burst of work on the event loop
      }
    });
  }
  const others = mode === "behind" ? setInterval(() => void link.call("answer"), 1000) : undefined;
  void outcome.then((text) => {
    clearInterval(others);
    process.send?.({ outcome: text });
  });
}
