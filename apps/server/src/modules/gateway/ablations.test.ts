import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { transform } from "esbuild";
import { describe, expect, it } from "vitest";
import { ABLATIONS, ablatedText, parseTarget } from "../../../../../bench/ablations.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../..");

/**
 * The benchmark's ablations (bench/ablations.ts) edit the gateway's sources in a throw-away worktree:
 * each edit must still find its text, exactly once, in the source as it is now, and leave code that
 * compiles, or `bench/compare.ts <commit>+<ablation>` would fail (or measure something else).
 */
describe("benchmark ablations", () => {
  for (const [name, ablation] of Object.entries(ABLATIONS)) {
    it(`${name}: its edits apply to today's sources and leave them compiling`, async () => {
      for (const file of new Set(ablation.edits.map((edit) => edit.file))) {
        const text = fs.readFileSync(path.join(root, file), "utf8");
        const ablated = ablatedText(name, file, text);
        expect(ablated).not.toBe(text);
        await expect(transform(ablated, { loader: "ts", format: "esm" })).resolves.toBeDefined();
      }
    });
  }

  it("refuses an edit whose text is gone or twice there, and an unknown ablation", () => {
    const file = "apps/server/src/modules/gateway/routes.ts";
    expect(() => ablatedText("limit-headers", file, "nothing of it")).toThrow(/exactly once/);
    const twice = "  reply.headers(admitted.headers);\n  call.candidates = admitted.candidates;\n".repeat(2);
    expect(() => ablatedText("limit-headers", file, twice)).toThrow(/exactly once/);
    expect(parseTarget("abc123+usage-write+admission")).toEqual({ commit: "abc123", ablations: ["usage-write", "admission"] });
    expect(() => parseTarget("abc123+everything")).toThrow(/no ablation "everything"/);
    expect(parseTarget("abc123+admission@plain,stream")).toEqual({ commit: "abc123", ablations: ["admission"], only: ["plain", "stream"] });
    expect(parseTarget("abc123@plain")).toEqual({ commit: "abc123", ablations: [], only: ["plain"] });
  });
});
