import { validate, version } from "uuid";
import { describe, expect, it } from "vitest";
import { newId, writeNewId } from "./ids.ts";

describe("newId", () => {
  it("makes valid, unique v7 UUIDs that ascend in the order they were made, across pool refills", () => {
    // 5,000 ids: many in one millisecond, and the 256-id random pool refilled about twenty times.
    const ids = Array.from({ length: 5000 }, newId);
    expect(ids.every((id) => validate(id) && version(id) === 7)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });

  it("puts the current time in the first 48 bits", () => {
    const before = Date.now();
    const id = newId();
    const ms = Number.parseInt(id.replace(/-/g, "").slice(0, 12), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(Date.now() + 1);
  });

  it("writes an id's text into bytes as newId answers it, in the same ascending order", () => {
    const into = new Uint8Array(40);
    const ids: string[] = [];
    for (let index = 0; index < 3000; index++) {
      if (index % 3 === 0) ids.push(newId());
      else {
        writeNewId(into, 2);
        ids.push(Buffer.from(into.subarray(2, 38)).toString("latin1"));
      }
    }
    expect(ids.every((id) => validate(id) && version(id) === 7 && id === id.toLowerCase())).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    // Nothing written outside its 36 bytes.
    expect([into[0], into[1], into[38], into[39]]).toEqual([0, 0, 0, 0]);
  });
});
