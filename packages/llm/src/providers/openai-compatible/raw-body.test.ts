import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ChatRequest } from "../../chat-types.ts";
import { requestJson } from "../../common.ts";
import { getProvider } from "../../registry.ts";
import type { CallContext, ProviderSpec } from "../../spec.ts";
import { rawJsonBody } from "./raw-body.ts";

const openai = getProvider("openai") as ProviderSpec;
const deepseek = getProvider("deepseek") as ProviderSpec;
const zhipu = getProvider("zhipu") as ProviderSpec;

const context = (text: string | undefined, model = "gpt-4o-mini"): CallContext => ({
  baseUrl: "http://upstream.test",
  credentials: { api_key: "sk-test" },
  model,
  rawBody: text === undefined ? undefined : Buffer.from(text),
});

/** What the adapter sends for `text` (parsed as the server parses it), and the same request serialised. */
function translate(provider: ProviderSpec, text: string, model?: string) {
  const body = JSON.parse(text) as ChatRequest;
  const passed = provider.chat.request(body, context(text, model)).request.body;
  const serialised = provider.chat.request(body, context(undefined, model)).request.body;
  return {
    passed: typeof passed === "string" ? undefined : Buffer.from(passed ?? []).toString("utf8"),
    json: requestJson({ body: passed }),
    serialised: requestJson({ body: serialised }),
  };
}

describe("a chat request passed on as the client's own bytes", () => {
  it("keeps the client's spelling: spacing, key order, escapes and integers beyond a double", () => {
    const text =
      '{ "model" : "gpt-4o-mini",\n  "messages": [{"role":"user","content":"caf\\u00e9 \u4f60\u597d"}],\n  "seed": 12345678901234567890 }';
    const { passed } = translate(openai, text);
    expect(passed).toBe(text);
    // Serialised again, the integer would have lost its last digits.
    expect(JSON.stringify(JSON.parse(text))).not.toContain("12345678901234567890");
  });

  it("asks a streamed request's usage by splicing stream_options in last, and leaves one that asks already", () => {
    const text = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true} \n';
    const { passed, json, serialised } = translate(openai, text);
    // Last, as the serialised request has it: parsers that take the last of keys alike read this one.
    expect(passed).toBe(`${text.trimEnd().slice(0, -1)},"stream_options":{"include_usage":true}}`);
    expect(json).toEqual(serialised);
    const asking =
      '{"messages":[{"role":"user","content":"hi"}],"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true}}';
    expect(translate(openai, asking).passed).toBe(asking);
  });

  it("is serialised instead whenever the bytes would not be the request the adapter means", () => {
    const cases = [
      // the channel maps the model to another name
      ['{"model":"smart","messages":[{"role":"user","content":"hi"}]}', "gpt-4o"],
      // "model" twice: JSON.parse reads the last, an upstream might read the first
      ['{"model":"gpt-4o","model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'],
      // spelled with an escape, which a search for the key would miss
      ['{"mod\\u0065l":"gpt-4o","model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'],
      // a tool's schema with a property named model
      [
        '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"model":{"type":"string"}}}}}]}',
      ],
      // stream_options to fill in or drop
      ['{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":null}'],
      ['{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{}}'],
      ['{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}'],
      // white space before the brace the member would follow
      [' {"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true}'],
    ] as const;
    for (const [text, model] of cases) {
      const { passed, json, serialised } = translate(openai, text, model);
      expect(passed, text).toBeUndefined();
      expect(json).toEqual(serialised);
    }
  });

  it("is serialised for a provider that drops or adjusts fields, and passed on when there is none to drop", () => {
    const dropped = '{"model":"deepseek-chat","messages":[{"role":"user","content":"hi"}],"seed":7}';
    expect(translate(deepseek, dropped, "deepseek-chat").passed).toBeUndefined();
    expect(translate(deepseek, dropped, "deepseek-chat").json).not.toHaveProperty("seed");
    const clean = '{"model":"deepseek-chat","messages":[{"role":"user","content":"hi"}]}';
    expect(translate(deepseek, clean, "deepseek-chat").passed).toBe(clean);
    expect(translate(zhipu, '{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}', "glm-4").passed).toBeUndefined();
  });

  it("sends, whenever it passes bytes on, the same JSON value as the serialised request", () => {
    const message = fc.record({ role: fc.constantFrom("system", "user", "assistant"), content: fc.string() });
    const request = fc.record(
      {
        model: fc.constantFrom("gpt-4o-mini", "model"),
        messages: fc.array(message, { minLength: 1, maxLength: 4 }),
        stream: fc.option(fc.boolean()),
        stream_options: fc.option(fc.record({ include_usage: fc.boolean() }, { requiredKeys: [] })),
        temperature: fc.double({ min: 0, max: 2, noNaN: true }),
        user: fc.string(),
      },
      { requiredKeys: ["model", "messages"] },
    );
    fc.assert(
      fc.property(request, fc.boolean(), (body, spaced) => {
        const text = JSON.stringify(body, null, spaced ? 1 : undefined);
        const { passed, json, serialised } = translate(openai, text, body.model);
        expect(json).toEqual(serialised);
        if (passed !== undefined) expect(passed.startsWith(text.slice(0, -1))).toBe(true);
      }),
    );
  });

  it("passes an embeddings request on as it came, and serialises one that names the model twice", () => {
    const embed = (text: string) => {
      const body = JSON.parse(text);
      return openai.embeddings?.request(body, context(text, "text-embedding-3-small")).request.body;
    };
    const text = '{"input":["a","b"],  "model":"text-embedding-3-small","dimensions":256}';
    expect(Buffer.from((embed(text) as Uint8Array) ?? []).toString("utf8")).toBe(text);
    const twice = '{"model":"other","input":"a","model":"text-embedding-3-small"}';
    expect(embed(twice)).toBe('{"model":"text-embedding-3-small","input":"a"}');
  });

  it("answers undefined without the client's bytes, or for bytes the parser read otherwise than as they are", () => {
    const body = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: "hi" }] };
    expect(rawJsonBody(body, undefined, "gpt-4o-mini", false)).toBeUndefined();
    const text = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}';
    expect(rawJsonBody(body, Buffer.from(text), "gpt-4o-mini", false)).toEqual(Buffer.from(text));
    // A byte order mark (which an upstream's JSON parser may refuse), and a byte that is not UTF-8
    // (which the server's parser read as U+FFFD).
    expect(rawJsonBody(body, Buffer.from(`\ufeff${text}`), "gpt-4o-mini", false)).toBeUndefined();
    const invalid = Buffer.from(text.replace("hi", "h\u0001"));
    invalid[invalid.indexOf(1)] = 0xff;
    expect(rawJsonBody(body, invalid, "gpt-4o-mini", false)).toBeUndefined();
  });
});
