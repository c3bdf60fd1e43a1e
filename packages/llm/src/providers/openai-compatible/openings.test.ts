import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { compatibleStreamDecoder, decodeCompatibleFrame } from "./create.ts";
import { streamOpenings } from "./openings.ts";

const chunk = (id: string, created: number, delta: Record<string, unknown>, model = "gpt-x", finish: string | null = null) =>
  JSON.stringify({
    id,
    object: "chat.completion.chunk",
    created,
    model,
    system_fingerprint: "fp_1",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });

/** A stream as an upstream sends it: the role chunk, text chunks, the finishing chunk, usage. */
function stream(id: string, created: number, texts: string[], model = "gpt-x"): string[] {
  return [
    chunk(id, created, { role: "assistant", content: "" }, model),
    ...texts.map((content) => chunk(id, created, { content }, model)),
    chunk(id, created, {}, model, "stop"),
    JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices: [], usage: { prompt_tokens: 3, completion_tokens: 4 } }),
  ];
}

/** The same stream with OpenAI's padding (`"obfuscation":"…"`, random characters) on each of its delta chunks. */
function padded(id: string, created: number, texts: string[], paddings: string[]): string[] {
  return stream(id, created, texts).map((frame, index, frames) => {
    if (index === frames.length - 1) return frame;
    return `${frame.slice(0, -1)},"usage":null,"obfuscation":${JSON.stringify(paddings[index % paddings.length] ?? "")}}`;
  });
}

/** What one stream's decoder makes of the frames, and how many times it called JSON.parse. */
function decodeAll(frames: string[], kept: ReturnType<typeof streamOpenings>) {
  const decoder = compatibleStreamDecoder(kept);
  const parse = vi.spyOn(JSON, "parse");
  try {
    const decoded = frames.map((data) => decoder.decode({ data }));
    return { decoded, parses: parse.mock.calls.length };
  } finally {
    parse.mockRestore();
  }
}

const parsedEach = (frames: string[]) => frames.map((data) => decodeCompatibleFrame({ data }));

describe("stream openings kept across streams", () => {
  it("give a stream that opens like an earlier one its chunk and template, with its own id and time, exactly as a parse would", () => {
    const id = fc.string({ minLength: 1, maxLength: 40 });
    const texts = fc.array(fc.string({ maxLength: 8 }), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(id, id, fc.nat(), fc.nat(), texts, (firstId, secondId, firstTime, secondTime, words) => {
        const kept = streamOpenings();
        decodeAll(stream(firstId, firstTime, ["a"]), kept);
        const frames = stream(secondId, secondTime, words);
        const { decoded } = decodeAll(frames, kept);
        expect(decoded).toEqual(parsedEach(frames));
      }),
      { numRuns: 300 },
    );
  });

  it("spare the second stream the parse of its opening and of its text chunks", () => {
    const kept = streamOpenings();
    const first = decodeAll(stream("chatcmpl-a", 1_700_000_000, ["Hel", "lo"]), kept);
    // The opening and the usage chunk (the finishing chunk is read off the template).
    expect(first.parses).toBe(2);
    const second = decodeAll(stream("chatcmpl-b", 1_700_000_123, ["Good", "bye", "!"]), kept);
    expect(second.parses).toBe(1);
  });

  it("do not stand for an opening of another model, shape, or an id or time spelled otherwise", () => {
    const kept = streamOpenings();
    decodeAll(stream("chatcmpl-a", 1_700_000_000, ["x"]), kept);
    const others = [
      stream("chatcmpl-b", 1_700_000_001, ["y"], "gpt-y"),
      stream('chatcmpl-"b"', 1_700_000_001, ["y"]),
      stream("chatcmpl-\u0001", 1_700_000_001, ["y"]),
      stream("chatcmpl-b", 1.5, ["y"]),
      [
        chunk("chatcmpl-b", 1_700_000_001, { role: "assistant", content: "", name: "n" }),
        chunk("chatcmpl-b", 1_700_000_001, { content: "y" }),
      ],
      [`${chunk("chatcmpl-b", 1_700_000_001, { role: "assistant", content: "" }).slice(0, -1)},"extra":1}`],
      [chunk("chatcmpl-b", 1_700_000_001, { role: "assistant", content: "" }).replace("1700000001", "01700000001")],
    ];
    for (const frames of others) {
      const { decoded, parses } = decodeAll(frames, streamOpenings());
      expect(decoded).toEqual(parsedEach(frames.filter(() => true)));
      const againstKept = decodeAll(frames, kept);
      expect(againstKept.decoded).toEqual(decoded);
      expect(againstKept.parses).toBe(parses);
    }
  });

  it("keep the openings of the last eight models", () => {
    const kept = streamOpenings();
    for (let model = 0; model < 9; model++) decodeAll(stream("a", 1, ["x"], `model-${model}`), kept);
    expect(decodeAll(stream("b", 2, [], "model-8"), kept).parses).toBe(1);
    expect(decodeAll(stream("b", 2, [], "model-1"), kept).parses).toBe(1);
    expect(decodeAll(stream("b", 2, [], "model-0"), kept).parses).toBe(2);
  });

  it("spare padded streams the parses too: the padding of each frame is its own", () => {
    const kept = streamOpenings();
    const firstFrames = padded("chatcmpl-a", 1_700_000_000, ["Hel", "lo"], ["Zq3", "x", "LwK0p", "7"]);
    const first = decodeAll(firstFrames, kept);
    // The opening, the check of where its padding sits, and the usage chunk.
    expect(first.parses).toBe(3);
    expect(first.decoded).toEqual(parsedEach(firstFrames));
    const frames = padded("chatcmpl-b", 1_700_000_123, ["Good", "bye", "!"], ["q", "WeRt", "", "9Yh", "Pp2"]);
    const second = decodeAll(frames, kept);
    expect(second.parses).toBe(1);
    expect(second.decoded).toEqual(parsedEach(frames));
  });

  it("decode padded streams that open like an earlier one exactly as a parse would, whatever the padding", () => {
    const padding = fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('"', "\\", "a\\", '"}'));
    const texts = fc.array(fc.string({ maxLength: 8 }), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(
        fc.array(padding, { minLength: 1, maxLength: 5 }),
        fc.array(padding, { minLength: 1, maxLength: 5 }),
        texts,
        (one, two, words) => {
          const kept = streamOpenings();
          decodeAll(padded("chatcmpl-a", 1, ["a"], one), kept);
          const frames = padded("chatcmpl-b", 2, words, two);
          expect(decodeAll(frames, kept).decoded).toEqual(parsedEach(frames));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("parse a frame whose padding holds a raw control character, as JSON refuses it", () => {
    const kept = streamOpenings();
    decodeAll(padded("chatcmpl-a", 1, ["a", "b"], ["Zq", "x1"]), kept);
    // Raw (unescaped) control characters in the padding of the opening, a text chunk and the finishing chunk.
    for (const raw of ["\u0000", "\t", "\n", "\u001f"]) {
      const frames = padded("chatcmpl-b", 2, ["c"], ["PAD"]).map((frame) => frame.replace('"PAD"', `"p${raw}q"`));
      const { decoded } = decodeAll(frames, kept);
      expect(decoded).toEqual(parsedEach(frames));
      expect(decoded.slice(0, 3).every((item) => item.error?.status === 502)).toBe(true);
    }
  });
});
