import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import type { StreamFrame } from "../../spec.ts";
import { compatibleStreamDecoder, decodeCompatibleFrame } from "./create.ts";
import { streamOpenings } from "./openings.ts";

const chunk = (delta: Record<string, unknown>, extra: Record<string, unknown> = {}, finish: string | null = null) => ({
  id: "chatcmpl-1",
  object: "chat.completion.chunk",
  created: 1_700_000_000,
  model: "gpt-x",
  system_fingerprint: "fp_1",
  choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  ...extra,
});

/** Every frame decoded by one stream's decoder, and the same frames each parsed on its own. */
function both(frames: StreamFrame[]) {
  const decoder = compatibleStreamDecoder();
  return { templated: frames.map((frame) => decoder.decode(frame)), parsed: frames.map(decodeCompatibleFrame) };
}

/** Streams of up to ten of the frames `frame` makes, compact or spaced, decode exactly as a parse of each frame does. */
function decodesAsParsed(frame: fc.Arbitrary<unknown>) {
  fc.assert(
    fc.property(fc.array(frame, { minLength: 1, maxLength: 10 }), fc.boolean(), (values, spaced) => {
      const frames = values.map((value) => ({ data: JSON.stringify(value, null, spaced ? 1 : undefined) }));
      const { templated, parsed } = both(frames);
      expect(templated).toEqual(parsed);
    }),
    { numRuns: 500 },
  );
}

describe("OpenAI-format stream chunks decoded through a template", () => {
  it("decodes any delta text exactly as a parse does, whatever its escapes and spacing", () => {
    const text = fc.oneof(
      fc.string(),
      fc.string({ unit: "binary" }),
      fc.constantFrom('"', "\\", '\\"', "\n", "\u2028", '"},{"x":"', "\\u0041"),
    );
    fc.assert(
      fc.property(fc.array(text, { minLength: 1, maxLength: 12 }), fc.boolean(), (texts, spaced) => {
        const frames = texts.map((value) => ({ data: JSON.stringify(chunk({ content: value }), null, spaced ? 1 : undefined) }));
        const { templated, parsed } = both(frames);
        expect(templated).toEqual(parsed);
      }),
    );
  });

  it("parses only the frames that do not fit the last plain text chunk", () => {
    const frames = ["", "Hel", "lo", ", ", 'a "quote"', "\n", "…"].map((content) => ({ data: JSON.stringify(chunk({ content })) }));
    const decoder = compatibleStreamDecoder();
    const parse = vi.spyOn(JSON, "parse");
    try {
      const texts = frames.map((frame) => decoder.decode(frame).chunks[0]?.choices[0]?.delta.content);
      expect(texts).toEqual(["", "Hel", "lo", ", ", 'a "quote"', "\n", "…"]);
      // The first frame, and the two texts with escapes in them (the first frame has no escape outside
      // its text, so where its text sits needs no second parse).
      expect(parse.mock.calls.length).toBe(3);
    } finally {
      parse.mockRestore();
    }
  });

  it("decodes a mixed stream exactly as a parse of each frame does", () => {
    const frames = [
      chunk({ role: "assistant", content: "" }),
      chunk({ content: "Hel" }),
      chunk({ content: 'lo \\ "quoted"\n' }),
      chunk({ content: "x" }, { id: "chatcmpl-2" }),
      chunk({ reasoning_content: "thinking" }),
      chunk({ reasoning_content: "more" }),
      chunk({ content: "a", tool_calls: [{ index: 0, function: { arguments: "{}" } }] }),
      chunk({ content: "b" }, { usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } }),
      chunk({}, {}, "stop"),
      chunk({ content: "y" }, { choices: [] }),
      { error: { message: "overloaded", code: 503 } },
    ].map((value) => ({ data: JSON.stringify(value) }));
    frames.push({ data: frames[2]?.data.replace('"},', '\\"},') ?? "" }, { data: "[DONE]" });
    const { templated, parsed } = both(frames);
    expect(templated).toEqual(parsed);
    expect(templated[2]?.chunks[0]?.choices[0]?.delta).toEqual({ content: 'lo \\ "quoted"\n' });
    expect(templated[5]?.chunks[0]?.choices[0]?.delta).toEqual({ reasoning_content: "more" });
    // A frame cut short where the text closes is malformed, not a chunk.
    expect(templated[11]?.error?.status).toBe(502);
    expect(templated.at(-1)?.done).toBe(true);
  });

  it("reads a stream's first text chunk off its role chunk and its finishing chunk off the template", () => {
    const frames = [
      chunk({ role: "assistant", content: "", refusal: null }),
      ...["Hel", "lo"].map((content) => chunk({ content })),
      chunk({}, {}, "stop"),
      chunk({ content: "x" }, { choices: [], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } }),
    ].map((value) => ({ data: JSON.stringify(value) }));
    const decoder = compatibleStreamDecoder(streamOpenings());
    const parse = vi.spyOn(JSON, "parse");
    try {
      const decoded = frames.map((frame) => decoder.decode(frame));
      // The role chunk and the usage chunk.
      expect(parse.mock.calls.length).toBe(2);
      expect(decoded).toEqual(frames.map(decodeCompatibleFrame));
      expect(decoded[3]?.chunks[0]?.choices[0]).toEqual({ index: 0, delta: {}, logprobs: null, finish_reason: "stop" });
      expect(decoded[3]?.raw).toBe(frames[3]?.data);
    } finally {
      parse.mockRestore();
    }
  });

  it("decodes streams with role, finishing and other chunks exactly as a parse of each frame does", () => {
    const reason = fc.constantFrom("stop", "length", "tool_calls", "Stop!", "", 'stop"', "a\u0062");
    const text = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('"', "\\", "}", '"},{"x":"', "{"));
    const frame = fc.oneof(
      fc
        .record({
          role: fc.constantFrom("assistant", "user"),
          content: fc.constantFrom("", "a", "}"),
          extra: fc.constantFrom({}, { refusal: null }, { refusal: "}" }, { tool_calls: [] }),
        })
        .map(({ role, content, extra }) => chunk({ role, content, ...extra })),
      text.map((content) => chunk({ content })),
      fc.tuple(reason, fc.constantFrom({}, { content: "" })).map(([why, delta]) => chunk(delta, {}, why)),
      reason.map((why) => ({ ...chunk({}, {}, why), id: "chatcmpl-2" })),
      reason.map((why) => chunk({}, { usage: null }, why)),
      fc.constantFrom(
        ...[
          { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
          {
            prompt_tokens: 4,
            completion_tokens: 5,
            prompt_tokens_details: { cached_tokens: 1 },
            completion_tokens_details: { reasoning_tokens: 2 },
          },
          { prompt_cache_hit_tokens: 3, prompt_tokens: 7 },
          {},
          null,
          [],
          5,
          "}",
        ].map((usage) => chunk({}, { choices: [], usage })),
        chunk({}, { choices: [], usage: { prompt_tokens: 1 }, after: 1 }),
        chunk({}, { choices: [{ index: 0, delta: {}, finish_reason: null }], usage: { prompt_tokens: 1 } }),
      ),
    );
    decodesAsParsed(frame);
  });

  it("does not take a string elsewhere in the chunk for the delta's text", () => {
    const decoder = compatibleStreamDecoder();
    const tricky = (value: string) => ({ data: JSON.stringify(chunk({ content: value }, { note: '"content":"' })) });
    for (const value of ["a", "b", "c"]) expect(decoder.decode(tricky(value))).toEqual(decodeCompatibleFrame(tricky(value)));
    // The delta's key spelled with an escape, and the same key spelled plainly elsewhere: the plain one
    // is not the delta's text.
    const escaped = (value: string, other: string) => ({
      data: JSON.stringify(chunk({ content: value }, { x: { content: other } })).replace('"delta":{"content"', '"delta":{"\\u0063ontent"'),
    });
    const other = compatibleStreamDecoder();
    for (const [value, extra] of [
      ["a", "x"],
      ["b", "x"],
      ["b", "y"],
      ["c", "x"],
    ] as const) {
      expect(other.decode(escaped(value, extra))).toEqual(decodeCompatibleFrame(escaped(value, extra)));
    }
  });

  it("reads frames padded with a different obfuscation value each off the template, as a parse does", () => {
    // OpenAI pads every streamed delta with random characters (`stream_options.include_obfuscation`).
    const frames = ["Hel", "lo", ", ", "wor", "ld"].map((content, index) => ({
      data: JSON.stringify(chunk({ content }, { usage: null, obfuscation: "x".repeat(index * 3 + 1) })),
    }));
    const decoder = compatibleStreamDecoder();
    const parse = vi.spyOn(JSON, "parse");
    try {
      const decoded = frames.map((frame) => decoder.decode(frame));
      // The first frame, and the check of where its padding sits.
      expect(parse.mock.calls.length).toBe(2);
      expect(decoded).toEqual(frames.map(decodeCompatibleFrame));
      expect(decoded.map((item) => (item.chunks[0] as { obfuscation?: string }).obfuscation)).toEqual([
        "x",
        "xxxx",
        "x".repeat(7),
        "x".repeat(10),
        "x".repeat(13),
      ]);
    } finally {
      parse.mockRestore();
    }
  });

  it("decodes padded frames exactly as a parse does, whatever the padding and the text", () => {
    const padding = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom("", '"', "\\", 'a"', "a\\", '"obfuscation":"'));
    const text = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('"', "\\", '","obfuscation":"'));
    const frame = fc.oneof(
      fc.tuple(text, padding).map(([content, pad]) => chunk({ content }, { usage: null, obfuscation: pad })),
      fc.tuple(text, padding).map(([content, pad]) => chunk({ content }, { obfuscation: pad, usage: null })),
      text.map((content) => chunk({ content }, { usage: null })),
      padding.map((pad) => chunk({}, { usage: null, obfuscation: pad }, "stop")),
    );
    decodesAsParsed(frame);
  });
});
