import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough, Readable } from "node:stream";
import { createParser } from "eventsource-parser";
import fc from "fast-check";
import { request } from "undici";
import { describe, expect, it } from "vitest";
import type { FrameBatch, StreamFrame } from "./spec.ts";
import { forEachBatch, readFrameBatches, readFrames, STOP_BATCHES } from "./stream-reader.ts";

/** What the event-stream parser reads from the whole text at once. */
function parsedWhole(text: string): StreamFrame[] {
  const frames: StreamFrame[] = [];
  const parser = createParser({
    onEvent: (message) => frames.push(message.event ? { event: message.event, data: message.data } : { data: message.data }),
  });
  parser.feed(text);
  return frames;
}

/** The text's bytes (or the bytes given) cut at the given fractions of their length (inside a character, too). */
async function* piecesOf(text: string | Uint8Array, cuts: number[]) {
  const bytes = typeof text === "string" ? Buffer.from(text) : text;
  let at = 0;
  for (const cut of [...new Set(cuts.map((value) => Math.floor(value * bytes.length)))].sort((a, b) => a - b)) {
    if (cut > at) yield bytes.subarray(at, cut);
    at = Math.max(at, cut);
  }
  if (at < bytes.length) yield bytes.subarray(at);
}

/** The frames read from the pieces, given as an async iterable, or as a Node readable stream (read by its events). */
async function collect(text: string, cuts: number[], evented = false) {
  const frames: StreamFrame[] = [];
  const body = evented ? Readable.from(piecesOf(text, cuts), { objectMode: false }) : piecesOf(text, cuts);
  for await (const frame of readFrames(body, "sse")) frames.push(frame);
  return frames;
}

const line = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 12 }).map((value) => `data: ${value.replace(/[\r\n]/g, " ")}`),
  fc.string({ maxLength: 6 }).map((value) => `data:${value.replace(/[\r\n]/g, "")}`),
  fc.constantFrom(
    "data:",
    "data: [DONE]",
    ": keep-alive",
    "event: message_start",
    "id: 7",
    "retry: 10",
    "data",
    "",
    "\r",
    "ddata: q",
    "xdata: r",
  ),
);
const event = fc.array(line, { minLength: 1, maxLength: 3 }).map((lines) => `${lines.join("\n")}\n\n`);
const events = fc.array(event, { maxLength: 8 });
/** Where to cut the body into pieces, as fractions of its length. */
const cutsAt = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 });

describe("server-sent event frames", () => {
  it("are read the same whatever the pieces the upstream sent them in", async () => {
    await fc.assert(
      fc.asyncProperty(events, cutsAt, async (list, cuts) => {
        const text = list.join("");
        expect(await collect(text, cuts)).toEqual(parsedWhole(text));
        expect(await collect(text, cuts, true)).toEqual(parsedWhole(text));
      }),
      { numRuns: 500 },
    );
  });

  it("come in one batch per piece", async () => {
    const text = 'data: {"a":1}\n\ndata:{"b":2}\n\n';
    const batches: StreamFrame[][] = [];
    for await (const batch of readFrameBatches(piecesOf(text + text, [0.5]), "sse")) batches.push(batch.frames);
    expect(batches).toEqual([
      [{ data: '{"a":1}' }, { data: '{"b":2}' }],
      [{ data: '{"a":1}' }, { data: '{"b":2}' }],
    ]);
  });

  it("carry the piece's bytes only when they are exactly the frames as `data: …` events", async () => {
    const canonical = 'data: {"a":1}\n\ndata: [DONE]\n\n';
    const pieces = [canonical, 'data:{"b":2}\n\n', 'data: {"c":"é"}\n\n', ": comment\n\ndata: x\n\n", canonical];
    const batches: FrameBatch[] = [];
    async function* body() {
      for (const piece of pieces) yield Buffer.from(piece);
    }
    for await (const batch of readFrameBatches(body(), "sse")) batches.push(batch);
    expect(batches.map((batch) => (batch.bytes ? Buffer.from(batch.bytes).toString() : undefined))).toEqual([
      canonical,
      undefined,
      undefined,
      undefined,
      canonical,
    ]);
  });

  it("whose bytes are their frames, however the pieces are cut", async () => {
    await fc.assert(
      fc.asyncProperty(events, cutsAt, async (list, cuts) => {
        for await (const batch of readFrameBatches(piecesOf(list.join(""), cuts), "sse")) {
          if (!batch.bytes) continue;
          const spelled = batch.frames.map((frame) => `data: ${frame.data}\n\n`).join("");
          expect(Buffer.from(batch.bytes).toString("latin1")).toBe(spelled);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("read bytes that are not all valid UTF-8 as the decoder reads the whole body, however the pieces are cut", async () => {
    // Events of text, with bytes no character starts with or ends with spliced in (lone lead and
    // continuation bytes, a character cut short): replaced as a decoder of the whole body replaces them.
    const broken = fc.constantFrom(
      [0x80],
      [0xbf, 0xbf],
      [0xc3],
      [0xe4, 0xbd],
      [0xf0, 0x9f, 0x98],
      [0xff],
      [0xe4, 0x41],
      [0xed, 0xa0, 0x80],
    );
    const chunkOf = fc.oneof(
      fc.string({ unit: "grapheme", maxLength: 8 }).map((value) => [...Buffer.from(value.replace(/[\r\n]/g, " "))]),
      broken,
    );
    const bodyEvent = fc.array(chunkOf, { maxLength: 4 }).map((parts) => [...Buffer.from("data: "), ...parts.flat(), 10, 10]);
    await fc.assert(
      fc.asyncProperty(fc.array(bodyEvent, { maxLength: 6 }), cutsAt, async (list, cuts) => {
        const bytes = Buffer.from(list.flat());
        const frames: StreamFrame[] = [];
        for await (const frame of readFrames(piecesOf(bytes, cuts), "sse")) frames.push(frame);
        expect(frames).toEqual(parsedWhole(new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes)));
      }),
      { numRuns: 500 },
    );
  });

  it("read a character cut short, then a piece of ASCII or whole UTF-8, in the order of the body", async () => {
    const read = async (pieces: number[][]) => {
      const frames: StreamFrame[] = [];
      async function* body() {
        for (const piece of pieces) yield Buffer.from(piece);
      }
      for await (const frame of readFrames(body(), "sse")) frames.push(frame);
      return frames;
    };
    const start = [...Buffer.from("data: a")];
    for (const cut of [[0xe4, 0xbd], [0xf0, 0x9f, 0x98], [0xc3], [0xe4], [0x80]]) {
      for (const next of [[...Buffer.from("b\n\n")], [...Buffer.from("é\n\n")]]) {
        const whole = new TextDecoder("utf-8", { ignoreBOM: true }).decode(Buffer.from([...start, ...cut, ...next]));
        expect(await read([[...start, ...cut], next])).toEqual(parsedWhole(whole));
        // The cut character's bytes in pieces of their own.
        expect(await read([start, ...cut.map((byte) => [byte]), next])).toEqual(parsedWhole(whole));
      }
    }
    // A character cut in three and completed, then ASCII.
    expect(await read([[...start, 0xf0], [0x9f], [0x98, 0x80], [...Buffer.from("b\n\n")]])).toEqual([{ data: "a😀b" }]);
  });

  it("drop a byte order mark at the start of the body only", async () => {
    const text = "\ufeffdata: a\n\ndata: \ufeffb\n\n";
    expect(await collect(text, [0.5])).toEqual([{ data: "a" }, { data: "\ufeffb" }]);
    expect(await collect(text.slice(1), [0.5])).toEqual([{ data: "a" }, { data: "\ufeffb" }]);
    expect(await collect("data: 你好\n\n", [0.3, 0.4, 0.5, 0.6])).toEqual([{ data: "你好" }]);
  });

  it("read a piece that ends inside an event, or a multi-line event, with the full parser", async () => {
    expect(await collect("data: a\nddata: b\n\n", [])).toEqual([{ data: "a" }]);
    const first = "data: one\n\ndata: tw";
    const text = `${first}o\n\nevent: ping\ndata: x\ndata: y\n\ndata: z\n\n`;
    expect(await collect(text, [first.length / text.length])).toEqual([
      { data: "one" },
      { data: "two" },
      { event: "ping", data: "x\ny" },
      { data: "z" },
    ]);
  });
});

describe("a Node readable body", () => {
  const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

  it("is paused while several batches wait to be asked for, and resumed once they are taken", async () => {
    const body = new PassThrough();
    const batches = readFrameBatches(body, "sse");
    body.write("data: a\n\n");
    await nextTurn();
    expect(body.isPaused()).toBe(false);
    for (let index = 1; index < 8; index++) {
      body.write(`data: ${index}\n\n`);
      await nextTurn();
    }
    expect(body.isPaused()).toBe(true);
    expect((await batches.next()).value?.frames).toEqual([{ data: "a" }]);
    for (let index = 1; index < 7; index++) await batches.next();
    expect(body.isPaused()).toBe(true);
    expect((await batches.next()).value?.frames).toEqual([{ data: "7" }]);
    expect(body.isPaused()).toBe(false);
    const waiting = batches.next();
    body.end("data: b\n\ndata: [DONE]\n\n");
    expect((await waiting).value?.frames).toEqual([{ data: "b" }, { data: "[DONE]" }]);
    expect(await batches.next()).toEqual({ done: true, value: undefined });
  });

  it("ends with what is left of its text when it ends inside an event", async () => {
    const body = new PassThrough();
    const batches = readFrameBatches(body, "ndjson");
    body.end('{"a":1}\n{"b":');
    expect((await batches.next()).value?.frames).toEqual([{ data: '{"a":1}' }]);
    expect((await batches.next()).value?.frames).toEqual([{ data: '{"b":' }]);
    expect((await batches.next()).done).toBe(true);
  });

  it("rejects the batch waited for with the body's error, and with a premature close when it is destroyed", async () => {
    const failing = new PassThrough();
    const first = readFrameBatches(failing, "sse").next();
    failing.destroy(new Error("connection reset"));
    await expect(first).rejects.toThrow("connection reset");

    const destroyed = new PassThrough();
    const batches = readFrameBatches(destroyed, "sse");
    destroyed.write("data: a\n\n");
    expect((await batches.next()).value?.frames).toEqual([{ data: "a" }]);
    const waiting = batches.next();
    destroyed.destroy();
    await expect(waiting).rejects.toMatchObject({ code: "ERR_STREAM_PREMATURE_CLOSE" });
    await expect(batches.next()).rejects.toMatchObject({ code: "ERR_STREAM_PREMATURE_CLOSE" });
  });

  it("keeps listening for errors after its end, and is destroyed when given up before it", async () => {
    const ended = new PassThrough();
    const batches = readFrameBatches(ended, "sse");
    ended.end("data: a\n\n");
    for await (const _ of batches) {
      // read to the end
    }
    expect(ended.listenerCount("data")).toBe(0);
    expect(ended.listenerCount("error")).toBe(1);

    const open = new PassThrough();
    open.write("data: a\n\ndata: b\n\n");
    for await (const batch of readFrameBatches(open, "sse")) {
      expect(batch.frames[0]).toEqual({ data: "a" });
      break;
    }
    expect(open.destroyed).toBe(true);
  });

  it("holds an upstream that sends faster than the batches are taken back, down to its socket", async () => {
    // An upstream that writes events as fast as its socket takes them, for as long as it does.
    let sent = 0;
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const event = `data: ${"x".repeat(1000)}\n\n`;
      const send = () => {
        while (!res.destroyed) {
          sent++;
          if (!res.write(event)) {
            res.once("drain", send);
            return;
          }
        }
      };
      send();
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const settled = async () => {
      // Up to 3 s: an upstream that is never held writes on.
      for (let before = -1, rounds = 0; before !== sent && rounds < 30; rounds++) {
        before = sent;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    try {
      const { body } = await request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      const batches = readFrameBatches(body, "sse");
      // Nothing taken: the body pauses, undici stops reading the socket, and the upstream's writes stop.
      await settled();
      expect(body.isPaused()).toBe(true);
      expect(sent).toBeLessThan(20_000);
      // Taken again: the upstream goes on.
      const stopped = sent;
      let frames = 0;
      while (frames < stopped) frames += (await batches.next()).value?.frames.length ?? 0;
      expect(sent).toBeGreaterThan(stopped);
      await batches.return?.();
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe("batches handed to a handler as they come", () => {
  const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
  const dataOf = (batch: FrameBatch) => batch.frames.map((frame) => frame.data).join(",");

  it("go to the handler from the body's data event itself, those that waited first, until the body ends", async () => {
    const body = new PassThrough();
    const batches = readFrameBatches(body, "sse");
    body.write("data: a\n\n");
    await nextTurn();
    const seen: string[] = [];
    const run = forEachBatch(batches, (batch) => {
      seen.push(dataOf(batch));
      return undefined;
    });
    // The batch that waited, at once.
    expect(seen).toEqual(["a"]);
    body.write("data: b\n\ndata: c\n\n");
    await nextTurn();
    expect(seen).toEqual(["a", "b,c"]);
    // Handed over in the data event: nothing waits for a turn of the microtask queue.
    body.emit("data", Buffer.from("data: d\n\n"));
    expect(seen).toEqual(["a", "b,c", "d"]);
    body.end("data: e\n\n");
    expect(await run).toBe("end");
    expect(seen).toEqual(["a", "b,c", "d", "e"]);
  });

  it("stop when the handler says so, and what comes next is read by next() as before", async () => {
    const body = new PassThrough();
    const batches = readFrameBatches(body, "sse");
    const run = forEachBatch(batches, (batch) => (dataOf(batch) === "stop" ? STOP_BATCHES : undefined));
    body.write("data: a\n\n");
    body.write("data: stop\n\n");
    expect(await run).toBe("stop");
    body.end("data: after\n\n");
    expect((await batches.next()).value?.frames).toEqual([{ data: "after" }]);
    expect((await batches.next()).done).toBe(true);
  });

  it("hold the next batch back while the handler's promise waits, pausing the body once several wait", async () => {
    const body = new PassThrough();
    const batches = readFrameBatches(body, "sse");
    const seen: string[] = [];
    let release = () => {};
    const run = forEachBatch(batches, (batch) => {
      seen.push(dataOf(batch));
      if (dataOf(batch) !== "slow") return undefined;
      return new Promise<void>((resolve) => {
        release = resolve;
      });
    });
    body.write("data: slow\n\n");
    await nextTurn();
    for (let index = 0; index < 8; index++) {
      body.write(`data: ${index}\n\n`);
      await nextTurn();
    }
    expect(seen).toEqual(["slow"]);
    expect(body.isPaused()).toBe(true);
    release();
    await nextTurn();
    expect(seen).toEqual(["slow", "0", "1", "2", "3", "4", "5", "6", "7"]);
    expect(body.isPaused()).toBe(false);
    body.end();
    expect(await run).toBe("end");
  });

  it("reject with the body's error after what came before it, and with the handler's own throw", async () => {
    const body = new PassThrough();
    const seen: string[] = [];
    const run = forEachBatch(readFrameBatches(body, "sse"), (batch) => {
      seen.push(dataOf(batch));
      return undefined;
    });
    body.write("data: a\n\n");
    await nextTurn();
    body.destroy(new Error("connection reset"));
    await expect(run).rejects.toThrow("connection reset");
    expect(seen).toEqual(["a"]);

    const thrown = new PassThrough();
    const failing = forEachBatch(readFrameBatches(thrown, "sse"), () => {
      throw new Error("handler broke");
    });
    thrown.write("data: a\n\n");
    await expect(failing).rejects.toThrow("handler broke");
  });

  it("are read with next() from a body that is only an async iterable, with the same answers", async () => {
    const body = async function* () {
      yield Buffer.from("data: a\n\n");
      yield Buffer.from("data: b\n\n");
      yield Buffer.from("data: c\n\n");
    };
    const seen: string[] = [];
    const all = forEachBatch(readFrameBatches(body(), "sse"), (batch) => {
      seen.push(dataOf(batch));
      return dataOf(batch) === "b" ? Promise.resolve() : undefined;
    });
    expect(await all).toBe("end");
    expect(seen).toEqual(["a", "b", "c"]);
    const stopped = forEachBatch(readFrameBatches(body(), "sse"), (batch) => (dataOf(batch) === "b" ? STOP_BATCHES : undefined));
    expect(await stopped).toBe("stop");
  });
});
