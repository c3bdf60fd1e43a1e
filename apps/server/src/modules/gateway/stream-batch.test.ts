import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { getProvider, readFrameBatches, type StreamFrame } from "@lyss/llm";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hasContent } from "./call.ts";
import { type InboundProtocol, openAIInbound } from "./inbound.ts";
import { anthropicInbound } from "./inbound-anthropic.ts";
import { type Accumulated, addText, relayBatch } from "./stream-batch.ts";

const provider = getProvider("openai-compatible");
const context = { baseUrl: "http://upstream.test", credentials: {}, model: "up-model" };
const request = { model: "public-model", messages: [{ role: "user" as const, content: "hi" }], stream: true };
const decoderFor = () => provider?.chat.stream(context, request) ?? expect.fail("no openai-compatible provider");

const base = (model: string) => ({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1_700_000_000, model });
const frameOf = {
  role: (model: string) => ({ ...base(model), choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] }),
  text: (model: string, content: string) => ({ ...base(model), choices: [{ index: 0, delta: { content }, finish_reason: null }] }),
  finish: (model: string) => ({ ...base(model), choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }),
  usage: (model: string) => ({ ...base(model), choices: [], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } }),
};

/** What the client gets for each chunk, encoded one by one (the relay's meaning, without passing bytes). */
function encodedOneByOne(inbound: InboundProtocol, includeUsage: boolean, frames: StreamFrame[]) {
  const decoder = decoderFor();
  const encoder = inbound.streamEncoder("public-model", includeUsage);
  let text = "";
  const state: Accumulated = { text: "", pieces: 0 };
  let content = false;
  for (const frame of frames) {
    const decoded = decoder.decode(frame);
    for (const chunk of decoded.chunks) {
      text += encoder.chunk(chunk, decoded.chunks.length === 1 ? decoded.raw : undefined);
      if (chunk.usage) state.usage = chunk.usage;
      for (const choice of chunk.choices) state.text += choice.delta.content ?? "";
      content ||= hasContent(chunk);
    }
    if (decoded.error || decoded.done) break;
  }
  return { text, state: { usage: state.usage, text: state.text }, content };
}

/** What the client gets for the pieces through relayBatch, and what the stream said. */
async function relayed(inbound: InboundProtocol, includeUsage: boolean, pieces: string[]) {
  const decoder = decoderFor();
  const encoder = inbound.streamEncoder("public-model", includeUsage);
  const state: Accumulated = { text: "", pieces: 0 };
  const parts: (string | Uint8Array)[] = [];
  let passedBytes = 0;
  let content = false;
  async function* body() {
    for (const piece of pieces) yield Buffer.from(piece);
  }
  for await (const batch of readFrameBatches(body(), "sse")) {
    const out = relayBatch(decoder, encoder, state, batch);
    content ||= out.content;
    for (const part of out.parts) {
      parts.push(part);
      if (typeof part !== "string") passedBytes += part.byteLength;
    }
    if (out.error || out.done) break;
  }
  const text = Buffer.concat(parts.map((part) => (typeof part === "string" ? Buffer.from(part) : part))).toString();
  return { text, state: { usage: state.usage, text: state.text }, content, passedBytes };
}

const sse = (payload: unknown) => `data: ${typeof payload === "string" ? payload : JSON.stringify(payload)}\n\n`;

describe("a batch of upstream frames relayed to the client", () => {
  it("is what encoding each chunk gives, byte for byte, and says what its chunks said, whatever passes as the upstream's own bytes", async () => {
    const content = fc.oneof(fc.constantFrom("tok ", "", 'say "hi"', "a\\b", "\n", "é", "日本"), fc.string({ maxLength: 6 }));
    const frame = fc.oneof(
      { weight: 6, arbitrary: fc.tuple(fc.constant("text"), content) },
      // Frames like the text chunk but for a character or two (another id, choice or object type) among
      // the text frames the relay passes on as bytes: relayed as their own parse says.
      { weight: 2, arbitrary: fc.tuple(fc.constantFrom("text-id", "text-index", "text-object"), content) },
      fc.tuple(fc.constantFrom("role", "finish", "usage", "done", "error", "spaced"), fc.constant("")),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(frame, { minLength: 1, maxLength: 14 }),
        fc.constantFrom("public-model", "up-model"),
        fc.boolean(),
        fc.array(fc.integer({ min: 1, max: 13 }), { maxLength: 4 }),
        fc.constantFrom(openAIInbound, anthropicInbound),
        async (kinds, model, includeUsage, cuts, inbound) => {
          const events = kinds.map(([kind, text]) => {
            if (kind === "text") return sse(frameOf.text(model, text));
            if (kind === "text-id") return sse({ ...frameOf.text(model, text), id: "chatcmpl-2" });
            if (kind === "text-object") return sse({ ...frameOf.text(model, text), object: "chat.completion.chonk" });
            if (kind === "text-index")
              return sse({ ...frameOf.text(model, text), choices: [{ index: 1, delta: { content: text }, finish_reason: null }] });
            if (kind === "done") return sse("[DONE]");
            if (kind === "error") return sse({ error: { message: "overloaded", code: 503 } });
            if (kind === "spaced") return `data:${JSON.stringify(frameOf.text(model, "x"))}\n\n`;
            return sse(frameOf[kind as "role" | "finish" | "usage"](model));
          });
          // Pieces of whole events, as upstreams send them (cut events go through the full parser).
          const pieces: string[] = [];
          let from = 0;
          for (const cut of [...new Set(cuts)].sort((a, b) => a - b).filter((cut) => cut < events.length)) {
            pieces.push(events.slice(from, cut).join(""));
            from = cut;
          }
          pieces.push(events.slice(from).join(""));
          const frames = events.map((event) => ({ data: event.slice(event.startsWith("data: ") ? 6 : 5, -2) }));
          const got = await relayed(inbound, includeUsage, pieces.filter(Boolean));
          const { passedBytes: _, ...said } = got;
          expect(said).toEqual(encodedOneByOne(inbound, includeUsage, frames));
        },
      ),
      { numRuns: 400 },
    );
  });

  it("passes plain OpenAI frames under the public name on as their bytes, and leaves out the usage the client did not ask for", async () => {
    const events = [
      frameOf.role("public-model"),
      frameOf.text("public-model", "Hel"),
      frameOf.text("public-model", "lo"),
      frameOf.finish("public-model"),
    ];
    const upstream = `${events.map(sse).join("")}${sse(frameOf.usage("public-model"))}${sse("[DONE]")}`;
    const got = await relayed(openAIInbound, false, [upstream]);
    expect(got.text).toBe(events.map(sse).join(""));
    expect(got.passedBytes).toBe(Buffer.byteLength(events.map(sse).join("")));
    expect(got.state).toEqual({ text: "Hello", usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } });
  });

  it("passes a piece that goes on whole as the piece itself, in a list of one part", async () => {
    const decoder = decoderFor();
    const encoder = openAIInbound.streamEncoder("public-model", false);
    const state: Accumulated = { text: "", pieces: 0 };
    const pieces = [
      sse(frameOf.role("public-model")) + sse(frameOf.text("public-model", "a")),
      sse(frameOf.text("public-model", "b")) + sse(frameOf.text("public-model", "c")),
      sse(frameOf.text("public-model", "d")) + sse(frameOf.usage("public-model")),
    ].map((piece) => Buffer.from(piece));
    async function* body() {
      yield* pieces;
    }
    const outs = [];
    for await (const batch of readFrameBatches(body(), "sse")) outs.push({ batch, out: relayBatch(decoder, encoder, state, batch) });
    expect(outs.map(({ out }) => out.parts.length)).toEqual([1, 1, 1]);
    // Whole pieces: the upstream's own buffers, no view of them made.
    expect(outs[0]?.out.parts[0]).toBe(outs[0]?.batch.bytes);
    expect(outs[1]?.out.parts[0]).toBe(outs[1]?.batch.bytes);
    // The usage the client did not ask for is left out: the text frame before it goes as a view of the piece.
    const last = outs[2]?.out.parts[0] as Uint8Array;
    expect(last).not.toBe(outs[2]?.batch.bytes);
    expect(Buffer.from(last).toString()).toBe(sse(frameOf.text("public-model", "d")));
    expect(state.text).toBe("abcd");
  });

  it("encodes again what must change: another model's name, a spaced-out frame, another protocol", async () => {
    const renamed = await relayed(openAIInbound, false, [sse(frameOf.text("up-model", "a")) + sse(frameOf.text("up-model", "b"))]);
    expect(renamed.passedBytes).toBe(0);
    expect(renamed.text).toBe(sse(frameOf.text("public-model", "a")) + sse(frameOf.text("public-model", "b")));
    const anthropic = await relayed(anthropicInbound, false, [sse(frameOf.text("public-model", "a"))]);
    expect(anthropic.passedBytes).toBe(0);
    expect(anthropic.text).toContain("event: message_start");
  });

  it("keeps a long answer's text whole while flattening it every 64 pieces", () => {
    const state: Accumulated = { text: "", pieces: 0 };
    const pieces = Array.from({ length: 1000 }, (_, i) => (i % 7 === 0 ? "" : i % 5 === 0 ? "日本" : `tok${i} `));
    for (const piece of pieces) addText(state, piece);
    expect(state.text).toBe(pieces.join(""));
    expect(state.pieces).toBe(pieces.filter(Boolean).length);
  });

  it("holds a long answer's text in about its length, not a node per piece", { timeout: 30_000 }, async () => {
    const script = path.join(import.meta.dirname, "../../test/text-memory.ts");
    const { stdout } = await promisify(execFile)(process.execPath, ["--expose-gc", "--import", "tsx", script], { timeout: 25_000 });
    // 10,000 characters a stream; as a chain of 2,000 pieces it took about 112 KB.
    expect(Number(stdout.trim())).toBeLessThan(25_000);
  });
});
