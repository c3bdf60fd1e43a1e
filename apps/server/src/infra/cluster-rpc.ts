import cluster, { type Worker } from "node:cluster";
import type { Logger } from "pino";
import type { BusRelay } from "./bus.ts";

/**
 * Lyss's messages between the cluster primary and its workers (`LYSS_WORKERS` > 1): calls answered by
 * the primary (shared counters without Redis, aggregated metrics), bus events it relays from one
 * worker to the others, and the control messages `ready` and `drain`. Every message carries this tag,
 * so the IPC channel can carry other libraries' messages too (rate-limiter-flexible, prom-client).
 */
const CHANNEL = "lyss:cluster";
/**
 * How long a worker waits for the primary's answer to a call while it hears nothing from the primary
 * at all. A primary that is behind (a burst of thousands of calls) but still answering earlier calls is
 * waited for, up to `CALL_LIMIT_MS` for any one call.
 */
const CALL_TIMEOUT_MS = 5000;
const CALL_LIMIT_MS = 30_000;

type Message =
  | { channel: typeof CHANNEL; type: "calls"; calls: Call[] }
  | { channel: typeof CHANNEL; type: "replies"; replies: Reply[] }
  | { channel: typeof CHANNEL; type: "event"; topic: string; payload: unknown }
  | { channel: typeof CHANNEL; type: "ready"; index: number }
  | { channel: typeof CHANNEL; type: "drain" };

interface Call {
  id: number;
  method: string;
  args: unknown[];
}

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: { name: string; message: string } };

type Body<T = Message> = T extends Message ? Omit<T, "channel"> : never;

function isOwn(message: unknown): message is Message {
  return typeof message === "object" && message !== null && (message as { channel?: unknown }).channel === CHANNEL;
}

/** The error a call failed with in the primary, thrown again in the worker. */
export class RemoteError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name === "Error" ? "RemoteError" : name;
  }
}

// biome-ignore lint/suspicious/noExplicitAny: a handler's arguments arrive from JSON; each handler names its own types
type Handler = (...args: any[]) => unknown;

/** The primary's side: answers the workers' calls, relays their events, tells them to drain. */
export interface ClusterHub {
  /** Answers every worker's calls to `method` (a thrown error or rejection travels back to the caller). */
  handle(method: string, handler: Handler): void;
  /** Relays each bus event a worker sends to every other worker (the event bus without Redis). */
  relayEvents(): void;
  /** Tells a worker to shut down gracefully, as SIGTERM would. */
  drain(worker: Worker): void;
  /** Called when a worker is listening (it sends `ready` once). */
  onReady(listener: (worker: Worker, index: number) => void): void;
  close(): void;
}

function send(worker: Worker, body: Body) {
  if (!worker.isConnected()) return;
  try {
    worker.send({ channel: CHANNEL, ...body });
  } catch {
    // The worker went away between the check and the send; its exit is handled elsewhere.
  }
}

export function createClusterHub(logger: Logger): ClusterHub {
  const handlers = new Map<string, Handler>();
  const readyListeners = new Set<(worker: Worker, index: number) => void>();
  let relaying = false;

  async function answer(call: Call): Promise<Reply> {
    try {
      const handler = handlers.get(call.method);
      if (!handler) throw new Error(`the primary process has no method ${call.method}`);
      return { id: call.id, ok: true, value: await handler(...call.args) };
    } catch (error) {
      const { name, message } = error instanceof Error ? error : new Error(String(error));
      return { id: call.id, ok: false, error: { name, message } };
    }
  }

  /**
   * A worker sends the calls of one event-loop turn together. They start in order (the in-memory
   * stores finish each one synchronously, so each check-and-add stays atomic) and their answers go
   * back in one message.
   */
  async function answerAll(worker: Worker, calls: Call[]) {
    send(worker, { type: "replies", replies: await Promise.all(calls.map(answer)) });
  }

  const onMessage = (worker: Worker, message: unknown) => {
    if (!isOwn(message)) return;
    if (message.type === "calls") void answerAll(worker, message.calls);
    else if (message.type === "event") {
      if (!relaying) return;
      for (const other of Object.values(cluster.workers ?? {})) if (other && other !== worker) send(other, message);
    } else if (message.type === "ready") for (const listener of readyListeners) listener(worker, message.index);
    else logger.warn({ type: message.type }, "unexpected cluster message from a worker");
  };
  cluster.on("message", onMessage);

  return {
    handle(method, handler) {
      handlers.set(method, handler);
    },
    relayEvents() {
      relaying = true;
    },
    drain(worker) {
      send(worker, { type: "drain" });
    },
    onReady(listener) {
      readyListeners.add(listener);
    },
    close() {
      cluster.off("message", onMessage);
    },
  };
}

/** A worker's side: calls into the primary, the bus relay through it, and its control messages. */
export interface PrimaryLink {
  /** Calls `method` in the primary; rejects with its error, or when it does not answer in time. */
  call<T>(method: string, ...args: unknown[]): Promise<T>;
  /**
   * Like `call`, for a change the primary applies whether the worker still waits or not (a settlement):
   * giving up on a silent primary would not undo it, only lose its answer, so it is waited for up to the
   * outer limit however long the primary is silent (a primary working through a burst of thousands).
   */
  apply<T>(method: string, ...args: unknown[]): Promise<T>;
  /** The event bus between workers, relayed by the primary. */
  bus: BusRelay;
  /** Tells the primary this worker is listening. */
  ready(index: number): void;
  /** Runs `listener` when the primary asks this worker to drain (at once if it already has). */
  onDrain(listener: () => void): void;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  method: string;
  sentAt: number;
  /** Made with `apply`: only the outer limit counts. */
  patient: boolean;
}

/**
 * Whether a call has waited too long: the primary has been silent (no answer to any call of this
 * worker) for the time limit since the call was made, or the call has waited for the outer limit (the
 * only limit of a patient call).
 */
export function isOverdue(sentAt: number, lastHeardAt: number, now: number, patient = false): boolean {
  if (now - sentAt >= CALL_LIMIT_MS) return true;
  return !patient && now - Math.max(sentAt, lastHeardAt) >= CALL_TIMEOUT_MS;
}

function connect(): PrimaryLink {
  const pending = new Map<number, Pending>();
  const eventListeners = new Set<(topic: string, payload: unknown) => void>();
  let drainListener: (() => void) | undefined;
  let drainRequested = false;
  let nextId = 1;
  /** When the primary last answered this worker (any call). */
  let lastHeardAt = 0;
  /** Calls made in this event-loop turn, sent together when it ends. */
  let outbox: Call[] = [];

  const post = (body: Body, onError?: (error: Error) => void) => {
    if (!process.connected || !process.send) {
      onError?.(new Error("the cluster primary process is gone"));
      return;
    }
    process.send({ channel: CHANNEL, ...body }, undefined, {}, (error: Error | null) => {
      if (error) onError?.(error);
    });
  };

  const fail = (id: number, error: Error) => {
    const call = pending.get(id);
    if (!call) return;
    pending.delete(id);
    call.reject(error);
  };

  const flush = () => {
    const calls = outbox;
    outbox = [];
    post({ type: "calls", calls }, (error) => {
      for (const call of calls) fail(call.id, error);
    });
  };

  // One sweep for every call's time limit, instead of a timer per call. Timers run before the event
  // loop reads the primary's channel: a busy worker's overdue calls are failed only after that read (in
  // the check phase), so an answer that has arrived is taken, not thrown away.
  const sweep = setInterval(() => {
    const now = Date.now();
    const overdue = [...pending].filter(([, call]) => isOverdue(call.sentAt, lastHeardAt, now, call.patient));
    if (overdue.length === 0) return;
    setImmediate(() => {
      const at = Date.now();
      for (const [id, call] of overdue) {
        // An answer read since the sweep may show the primary is only behind.
        if (!pending.has(id) || !isOverdue(call.sentAt, lastHeardAt, at, call.patient)) continue;
        fail(id, new Error(`the cluster primary did not answer ${call.method} (waited ${at - call.sentAt} ms)`));
      }
    });
  }, 250);
  sweep.unref();

  process.on("message", (message: unknown) => {
    if (!isOwn(message)) return;
    if (message.type === "replies") {
      lastHeardAt = Date.now();
      for (const reply of message.replies) {
        const call = pending.get(reply.id);
        if (!call) continue;
        pending.delete(reply.id);
        if (reply.ok) call.resolve(reply.value);
        else call.reject(new RemoteError(reply.error.name, reply.error.message));
      }
    } else if (message.type === "event") {
      for (const listener of eventListeners) listener(message.topic, message.payload);
    } else if (message.type === "drain") {
      drainRequested = true;
      drainListener?.();
    }
  });
  process.on("disconnect", () => {
    for (const id of [...pending.keys()]) fail(id, new Error("the cluster primary process is gone"));
  });

  const call = <T>(method: string, args: unknown[], patient: boolean) =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject, method, sentAt: Date.now(), patient });
      if (outbox.length === 0) setImmediate(flush);
      outbox.push({ id, method, args });
    });

  return {
    call: (method, ...args) => call(method, args, false),
    apply: (method, ...args) => call(method, args, true),
    bus: {
      send(topic, payload) {
        post({ type: "event", topic, payload });
      },
      listen(deliver) {
        eventListeners.add(deliver);
        return () => {
          eventListeners.delete(deliver);
        };
      },
    },
    ready(index) {
      post({ type: "ready", index });
    },
    onDrain(listener) {
      drainListener = listener;
      if (drainRequested) listener();
    },
  };
}

let link: PrimaryLink | undefined;

/** This process's link to the cluster primary; undefined unless it is a worker forked by Lyss's primary. */
export function primaryLink(): PrimaryLink | undefined {
  if (workerIndex() === undefined || !process.send) return undefined;
  link ??= connect();
  return link;
}

/** This worker's number, 1 to LYSS_WORKERS, given by the primary; undefined outside a cluster worker. */
export function workerIndex(): number | undefined {
  if (!cluster.isWorker) return undefined;
  const index = Number(process.env.LYSS_WORKER_INDEX);
  return Number.isInteger(index) && index > 0 ? index : undefined;
}
