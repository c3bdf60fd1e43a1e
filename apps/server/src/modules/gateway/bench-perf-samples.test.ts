import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { callerOf, readSamples, type Sample } from "../../../../../bench/perf-samples.ts";

async function samplesOf(text: string): Promise<Sample[]> {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "lyss-perf-samples-")), "listing.txt");
  fs.writeFileSync(file, text);
  const samples: Sample[] = [];
  for await (const sample of readSamples(file)) samples.push(sample);
  return samples;
}

describe("perf script listings read by the CPU attribution", () => {
  it("reads samples with their stacks (call graphs), innermost first, offsets dropped", async () => {
    const samples = await samplesOf(
      [
        "4021 ",
        "\t          cb8304 Builtins_LoadIC_Megamorphic+0x24 (/usr/bin/node)",
        "\t    7f16ca7c5f55 JS:*relayBatch file:///srv/dist/main.js:3:17 (/tmp/perf-4021.map)",
        "\t    7f16ca7c6000 JS:*attemptAll file:///srv/dist/main.js:9:2 (/tmp/perf-4021.map)",
        "",
        "4022 ",
        "\t ffffffff8100 _raw_spin_unlock_irqrestore ([kernel.kallsyms])",
        "\t          b09a7a uv__io_poll (/usr/bin/node)",
        "",
        "4023 ",
        "",
      ].join("\n"),
    );
    expect(samples).toHaveLength(3);
    expect(samples[0]?.tid).toBe("4021");
    expect(samples[0]?.frames.map((frame) => frame.symbol)).toEqual([
      "Builtins_LoadIC_Megamorphic",
      "JS:*relayBatch file:///srv/dist/main.js:3:17",
      "JS:*attemptAll file:///srv/dist/main.js:9:2",
    ]);
    // A builtin's time is the JavaScript function's that called it; a stack without JavaScript has none.
    expect(callerOf(samples[0] as Sample)?.symbol).toBe("JS:*relayBatch file:///srv/dist/main.js:3:17");
    expect(samples[1]?.frames[0]).toEqual({ symbol: "_raw_spin_unlock_irqrestore", dso: "[kernel.kallsyms]" });
    expect(callerOf(samples[1] as Sample)).toBeUndefined();
    // A stack perf could not unwind still counts on its thread.
    expect(samples[2]).toEqual({ tid: "4023", frames: [{ symbol: "[unknown]", dso: "[unknown]" }] });
  });

  it("reads samples of one line each (no call graphs)", async () => {
    const samples = await samplesOf(
      [
        "   4021          cb8304 Builtins_StringEqual+0x10 (/usr/bin/node)",
        "   4023     7f16ca7c5f55 JS:~flush node:events:1:1 (/tmp/perf-4021.map)",
      ].join("\n"),
    );
    expect(samples).toEqual([
      { tid: "4021", frames: [{ symbol: "Builtins_StringEqual", dso: "/usr/bin/node" }] },
      { tid: "4023", frames: [{ symbol: "JS:~flush node:events:1:1", dso: "/tmp/perf-4021.map" }] },
    ]);
  });
});
