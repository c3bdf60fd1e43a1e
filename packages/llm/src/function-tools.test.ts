import { describe, expect, it } from "vitest";
import type { ChatRequest } from "./chat-types.ts";
import { functionFault, functionToolsOnly } from "./common.ts";
import { PROVIDERS } from "./registry.ts";

const lookup = { type: "function" as const, function: { name: "lookup", parameters: { type: "object", properties: {} } } };
const custom = { type: "custom", custom: { name: "grammar" } };

describe("tools of other kinds than functions", () => {
  it("reads a function tool or call by its function, and any other kind not at all", () => {
    expect(functionFault(lookup, "tool")).toBeUndefined();
    expect(functionFault({ function: { name: "f", arguments: "{}" } }, "call")).toBeUndefined();
    expect(functionFault(custom, "call")).toBeUndefined();
    expect(functionFault({ type: "function" }, "tool")).toMatch(/function.name/);
    expect(functionFault({ type: "function", function: { name: "f" } }, "call")).toMatch(/function.arguments/);
  });

  it("leaves the request as it is when it has only functions", () => {
    const body: ChatRequest = { model: "m", messages: [{ role: "user", content: "hi" }], tools: [lookup], tool_choice: "auto" };
    const warnings: string[] = [];
    expect(functionToolsOnly(body, "P", warnings)).toBe(body);
    expect(warnings).toEqual([]);
  });

  it("leaves out the other tools, a tool choice of another kind and earlier turns' other calls, each said once", () => {
    const body = {
      model: "m",
      messages: [
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "a", type: "custom", custom: { name: "grammar", input: "x" } },
            { id: "b", type: "function", function: { name: "lookup", arguments: "{}" } },
          ],
        },
        { role: "user", content: "go" },
      ],
      tools: [custom, lookup],
      tool_choice: { type: "custom", custom: { name: "grammar" } },
    } as unknown as ChatRequest;
    const warnings: string[] = [];
    const narrowed = functionToolsOnly(body, "P", warnings);
    expect(narrowed.tools).toEqual([lookup]);
    expect(narrowed).not.toHaveProperty("tool_choice");
    expect(narrowed.messages[0]?.tool_calls?.map((call) => call.id)).toEqual(["b"]);
    expect(warnings).toHaveLength(3);
    // The caller's request is not changed.
    expect(body.tools).toHaveLength(2);
  });

  it("is what the Anthropic, Gemini and Ollama adapters send: none of them is given a tool it cannot read", () => {
    const body = {
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      tools: [custom, lookup],
      tool_choice: { type: "custom" },
    } as unknown as ChatRequest;
    for (const id of ["anthropic", "gemini", "ollama"]) {
      const provider = PROVIDERS.find((candidate) => candidate.id === id);
      const translated = provider?.chat.request(body, { baseUrl: "http://127.0.0.1:1", credentials: { api_key: "k" }, model: "m" });
      expect(JSON.stringify(translated?.request.body), id).not.toContain("grammar");
      expect(JSON.stringify(translated?.request.body), id).toContain("lookup");
      expect(
        translated?.warnings.filter((warning) => warning.includes("function tools only")),
        id,
      ).toHaveLength(2);
    }
  });
});
