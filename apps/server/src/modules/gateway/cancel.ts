import { EventEmitter } from "node:events";

/**
 * Cancellation on the relay's hot path: an AbortController costs an EventTarget per request, while
 * undici takes any EventEmitter with `aborted` as a request's signal. `abort` emits "abort" once, and
 * aborts the cancels that follow this one (an attempt's, under its call's).
 */
export class Cancel extends EventEmitter {
  aborted = false;
  reason: unknown;
  private followers: Cancel[] | undefined;

  abort(reason?: unknown) {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit("abort");
    const followers = this.followers;
    this.followers = undefined;
    if (followers) for (const follower of followers) follower.abort(reason);
  }

  /**
   * Makes `follower` abort when this one does (at once, if it has): a list of its own instead of an
   * "abort" listener, which `once` wraps in a closure and a state object of its own per attempt.
   */
  lead(follower: Cancel) {
    if (this.aborted) follower.abort(this.reason);
    else if (this.followers) this.followers.push(follower);
    else this.followers = [follower];
  }

  /** Lets go of a follower that is done with. */
  release(follower: Cancel) {
    const followers = this.followers;
    const at = followers ? followers.indexOf(follower) : -1;
    if (at >= 0) followers?.splice(at, 1);
  }
}
