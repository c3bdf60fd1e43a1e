import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadCounter, tokenCounter } from "../../infra/tokenizer.ts";
import { COUNTED_CHARS, estimateUsage } from "./token-count.ts";

describe("usage estimate", () => {
  it("counts the prompt as role-prefixed lines (three tokens of framing a message) and the answer", async () => {
    const counter = await tokenCounter();
    const usage = await estimateUsage(
      {
        model: "m",
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "What is <|endoftext|>?" },
        ],
      },
      "A special token.",
    );
    expect(usage.prompt_tokens).toBe(counter.count("system: Be brief.\nuser: What is <|endoftext|>?") + 6);
    expect(usage.completion_tokens).toBe(counter.count("A special token."));
    expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);
  });

  it("estimates a text past the counted length from the part counted, close to the exact count", async () => {
    const counter = await tokenCounter();
    const words = ["gateway", "quota", "stream", "模型", "的", "token", "failover", "😀", "function", "(x)", "=>", "42", "\n"];
    let answer = "";
    for (let i = 0; answer.length < COUNTED_CHARS * 4; i++) answer += `${words[(i * 7) % words.length]}${i % 5 ? " " : ""}`;
    const usage = await estimateUsage({ model: "m", messages: [{ role: "user", content: "Write a lot." }] }, answer);
    const exact = counter.count(answer);
    expect(Math.abs(usage.completion_tokens - exact) / exact).toBeLessThan(0.02);
  });

  it("counts four characters a token when the vocabulary cannot be read, so the call is still billed", async () => {
    const unreadable = () => Promise.reject(new Error("ENOENT: no vocabulary"));
    const usage = await estimateUsage({ model: "m", messages: [{ role: "user", content: "Write a lot." }] }, "x".repeat(41), unreadable);
    expect(usage).toEqual({ prompt_tokens: Math.ceil("user: Write a lot.".length / 4) + 3, completion_tokens: 11, total_tokens: 19 });
  });

  it("loads a vocabulary file of tiktoken's format, and refuses a file that is not there", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lyss-vocabulary-"));
    const file = path.join(dir, "tiny.tiktoken");
    const lines = ["a", "b", "ab", "abab"].map((token, rank) => `${Buffer.from(token).toString("base64")} ${rank}`);
    fs.writeFileSync(file, `${lines.join("\n")}\n`);
    try {
      const counter = await loadCounter(file);
      expect(counter.count("abab")).toBe(1);
      expect(counter.count("ababa")).toBe(2);
      expect(counter.count("ba")).toBe(2);
      await expect(loadCounter(path.join(dir, "missing.tiktoken"))).rejects.toThrow(/ENOENT/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
