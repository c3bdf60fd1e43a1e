import { EventEmitter } from "node:events";

/**
 * Cancellation on the relay's hot path: an AbortController costs an EventTarget per request, while
 * undici takes any EventEmitter with `aborted` as a request's signal. `abort` emits "abort" once.
 */
export class Cancel extends EventEmitter {
  aborted = false;
  reason: unknown;

  abort(reason?: unknown) {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit("abort");
  }
}
