import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { encode } from "gpt-tokenizer";
import { describe, expect, it } from "vitest";
import { counterFor, parseVocabulary, tokenCounter } from "./tokenizer.ts";

/** gpt-tokenizer's own encoder, special tokens taken as text: what the counter must agree with. */
const reference = (text: string) => encode(text, { disallowedSpecial: new Set() }).length;

/** A deterministic stream of code points from `ranges`, a space or newline now and then. */
function generated(seed: number, length: number, ranges: [number, number][]): string {
  let state = seed;
  const random = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
  let text = "";
  for (let i = 0; i < length; i++) {
    const roll = random();
    if (roll < 0.08) text += " ";
    else if (roll < 0.1) text += "\n";
    else {
      const [low, high] = ranges[Math.floor(random() * ranges.length)] as [number, number];
      text += String.fromCodePoint(low + Math.floor(random() * (high - low)));
    }
  }
  return text;
}

describe("token counter (o200k)", () => {
  it("counts as gpt-tokenizer encodes, across scripts, code, emoji and long pieces", async () => {
    const counter = await tokenCounter();
    const texts = [
      "",
      "Hello, world! This is a test of the emergency broadcast system.",
      "I'm sure you've heard they'd've done it. DON'T SHOUT. We'LL see",
      "人工智能正在改变世界。我们的网关支持多租户、配额和故障转移。",
      "日本語のテキストも数えます。カタカナとひらがな、漢字。",
      "function add(a, b) {\n  return a + b;\n}\n\n\tconst x = [1, 2, 3].map((v) => v * 2);\n",
      "😀🎉👍🏽 emoji 🇫🇷 flags and 👨‍👩‍👧‍👦 sequences",
      '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true}',
      "   leading spaces and trailing   \n\n\n   ",
      "Numbers 1234567890 3.14159 1e10 -42 0x1F",
      "Ünïcödé àccents, Straße, Ελληνικά, русский текст, عربى, עברית, हिन्दी, ไทย",
      "x\u0300\u0301\u0302 combining marks \u200b zero width",
      "a".repeat(5000),
      "abcdefghij".repeat(500),
      // One piece of thousands of bytes (Chinese runs without spaces), merged through the heap.
      Array.from({ length: 3000 }, (_, i) => String.fromCodePoint(0x4e00 + ((i * 7919) % 20000))).join(""),
      generated(1, 4000, [
        [0x20, 0x7f],
        [0xc0, 0x250],
        [0x400, 0x500],
        [0x3040, 0x30ff],
        [0x4e00, 0x9fff],
        [0xac00, 0xd7a3],
        [0x1f300, 0x1f64f],
      ]),
      generated(2, 4000, [[0x21, 0x7f]]),
    ];
    for (const text of texts) expect(counter.count(text), JSON.stringify(text.slice(0, 40))).toBe(reference(text));
  });

  it("takes special tokens as the text they are", async () => {
    const counter = await tokenCounter();
    const text = "What does <|endoftext|> mean, and <|fim_prefix|> or <|im_start|>?";
    expect(counter.count(text)).toBe(reference(text));
    expect(counter.count("<|endoftext|>")).toBeGreaterThan(1);
  });

  it("holds the vocabulary in a few megabytes of typed arrays", () => {
    const file = readFileSync(createRequire(import.meta.url).resolve("gpt-tokenizer/data/o200k_base.tiktoken"));
    const vocabulary = parseVocabulary(file);
    expect(vocabulary.start.length).toBe(199_998 + 1);
    const held = vocabulary.bytes.byteLength + vocabulary.start.byteLength + vocabulary.table.byteLength;
    expect(held).toBeLessThan(6 * 1024 * 1024);
    // Parsed again, the same counts.
    expect(counterFor(vocabulary).count("tokens, counted twice")).toBe(reference("tokens, counted twice"));
  });

  it("answers one counter to every caller: the vocabulary is read once", async () => {
    const [a, b] = await Promise.all([tokenCounter(), tokenCounter()]);
    expect(a).toBe(b);
  });
});
