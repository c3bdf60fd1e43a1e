import { describe, expect, it } from "vitest";
import { tokenCounter } from "../../infra/tokenizer.ts";
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
});
