import { describe, expect, it } from "vitest";
import { Cancel } from "./cancel.ts";

describe("Cancel", () => {
  it("aborts once, with its reason, and the cancels that follow it", () => {
    const call = new Cancel();
    const first = new Cancel();
    const second = new Cancel();
    const heard: string[] = [];
    call.on("abort", () => heard.push("call"));
    first.on("abort", () => heard.push("first"));
    second.on("abort", () => heard.push("second"));
    call.lead(first);
    call.lead(second);
    call.abort("gone");
    call.abort("again");
    expect(heard).toEqual(["call", "first", "second"]);
    expect([first.aborted, first.reason, second.reason]).toEqual([true, "gone", "gone"]);
  });

  it("aborts a follower at once when it already was, and leaves a released one alone", () => {
    const call = new Cancel();
    const done = new Cancel();
    const open = new Cancel();
    call.lead(done);
    call.lead(open);
    call.release(done);
    call.release(done);
    call.abort("stop");
    expect([done.aborted, open.aborted]).toEqual([false, true]);
    const late = new Cancel();
    call.lead(late);
    expect([late.aborted, late.reason]).toEqual([true, "stop"]);
  });
});
