import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import type { ChatCall } from "./call.ts";
import { Cancel } from "./cancel.ts";
import { Downstream, type Part } from "./downstream.ts";

/** A real response written through Downstream, read back by a real client as bytes. */
async function relayed(writes: Part[][], last: Part[]): Promise<Buffer> {
  const server = http.createServer(async (_request, response) => {
    const reply = { raw: response, hijack() {}, getHeaders: () => ({}) };
    const downstream = new Downstream({ reply } as unknown as ChatCall, new Cancel());
    downstream.commit();
    for (const parts of writes) await downstream.write(parts);
    downstream.end(last);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const answer = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    expect(answer.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    return Buffer.from(await answer.arrayBuffer());
  } finally {
    server.close();
  }
}

describe("a stream's client side", () => {
  it("sends text and the upstream's bytes in order, text as UTF-8, however the parts of a write are mixed", async () => {
    const bytes = (text: string) => new Uint8Array(Buffer.from(text));
    const body = await relayed(
      [["data: é\n\n"], [bytes("data: 1\n\n"), "data: 日本 🙂\n\n", bytes("data: 2\n\n")], [bytes("data: 3\n\n")]],
      ["data: x\n\n", bytes("data: [DONE]\n\n")],
    );
    expect(body.toString("utf8")).toBe("data: é\n\ndata: 1\n\ndata: 日本 🙂\n\ndata: 2\n\ndata: 3\n\ndata: x\n\ndata: [DONE]\n\n");
  });

  it("ends with text parts only, and with none", async () => {
    expect((await relayed([], ["data: a\n\n", "data: ü\n\n"])).toString("utf8")).toBe("data: a\n\ndata: ü\n\n");
    expect((await relayed([["data: b\n\n"]], [])).toString("utf8")).toBe("data: b\n\n");
  });

  it("finishes a stream not yet committed as one body with its length, text counted as UTF-8 bytes", async () => {
    const bytes = (text: string) => new Uint8Array(Buffer.from(text));
    const server = http.createServer((_request, response) => {
      const reply = { raw: response, hijack() {}, getHeaders: () => ({ "x-request-id": "whole-1" }) };
      new Downstream({ reply } as unknown as ChatCall, new Cancel()).finish([
        bytes("data: 1\n\n"),
        "data: 日本 🙂 é\n\n",
        "data: [DONE]\n\n",
      ]);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const answer = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      const body = Buffer.from(await answer.arrayBuffer());
      expect(body.toString("utf8")).toBe("data: 1\n\ndata: 日本 🙂 é\n\ndata: [DONE]\n\n");
      expect(answer.headers.get("content-length")).toBe(String(body.length));
      expect(answer.headers.get("transfer-encoding")).toBeNull();
      expect(answer.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
      expect(answer.headers.get("x-request-id")).toBe("whole-1");
    } finally {
      server.close();
    }
  });

  it("finishes a stream already committed in its chunked framing", async () => {
    const server = http.createServer((_request, response) => {
      const reply = { raw: response, hijack() {}, getHeaders: () => ({}) };
      const downstream = new Downstream({ reply } as unknown as ChatCall, new Cancel());
      downstream.commit();
      void downstream.write(["data: a\n\n"]);
      downstream.finish(["data: [DONE]\n\n"]);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const answer = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      expect(await answer.text()).toBe("data: a\n\ndata: [DONE]\n\n");
      expect(answer.headers.get("transfer-encoding")).toBe("chunked");
      expect(answer.headers.get("content-length")).toBeNull();
    } finally {
      server.close();
    }
  });

  it("answers a promise only when the client must drain first, and it resolves once the client has read", async () => {
    const answers: ("promise" | "none")[] = [];
    const server = http.createServer(async (_request, response) => {
      const reply = { raw: response, hijack() {}, getHeaders: () => ({}) };
      const downstream = new Downstream({ reply } as unknown as ChatCall, new Cancel());
      downstream.commit();
      for (let index = 0; index < 8; index++) {
        const draining = downstream.write([`data: ${String(index).repeat(1 << 20)}\n\n`]);
        answers.push(draining ? "promise" : "none");
        if (draining) await draining;
      }
      answers.push(downstream.write(["data: small\n\n"]) ? "promise" : "none");
      downstream.end(["data: [DONE]\n\n"]);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const answer = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      const text = Buffer.from(await answer.arrayBuffer()).toString("utf8");
      const events = text.split("\n\n").filter(Boolean);
      expect(events.map((event) => event.slice(0, 7))).toEqual([
        ...Array.from({ length: 8 }, (_, index) => `data: ${index}`),
        "data: s",
        "data: [",
      ]);
      expect(events.slice(0, 8).every((event, index) => event === `data: ${String(index).repeat(1 << 20)}`)).toBe(true);
      // A megabyte fills the socket's buffer: the writer waited for the client; a write with room did not.
      expect(answers.slice(0, 8)).toContain("promise");
      expect(answers[8]).toBe("none");
    } finally {
      server.close();
    }
  });
});
