import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { callerOf, jitNames, readSamples, type Sample } from "../../../../../bench/perf-samples.ts";

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
    expect(samples[0]?.frames[1]?.ip).toBe(0x7f16ca7c5f55);
    // A builtin's time is the JavaScript function's that called it; a stack without JavaScript has none.
    expect(callerOf(samples[0] as Sample)?.symbol).toBe("JS:*relayBatch file:///srv/dist/main.js:3:17");
    expect(samples[1]?.frames[0]).toEqual({ symbol: "_raw_spin_unlock_irqrestore", dso: "[kernel.kallsyms]", ip: 0xffffffff8100 });
    expect(callerOf(samples[1] as Sample)).toBeUndefined();
    // A stack perf could not unwind still counts on its thread.
    expect(samples[2]).toEqual({ tid: "4023", frames: [{ symbol: "[unknown]", dso: "[unknown]", ip: 0 }] });
  });

  it("reads samples of one line each (no call graphs)", async () => {
    const samples = await samplesOf(
      [
        "   4021          cb8304 Builtins_StringEqual+0x10 (/usr/bin/node)",
        "   4023     7f16ca7c5f55 JS:~flush node:events:1:1 (/tmp/perf-4021.map)",
      ].join("\n"),
    );
    expect(samples).toEqual([
      { tid: "4021", frames: [{ symbol: "Builtins_StringEqual", dso: "/usr/bin/node", ip: 0xcb8304 }] },
      { tid: "4023", frames: [{ symbol: "JS:~flush node:events:1:1", dso: "/tmp/perf-4021.map", ip: 0x7f16ca7c5f55 }] },
    ]);
  });

  it("names JIT code by the newest line of the map that holds its address", () => {
    const name = jitNames(
      [
        "1000 100 JS:*relayBatch a.js:1:1",
        "2000 80 JS:~handleChat a.js:2:1",
        // Code made later where relayBatch's was, partly over it, and a long function around both.
        "1040 40 JS:*relayPlain a.js:3:1",
        "f00 2000 JS:*big a.js:4:1",
        "1000 10 JS:*small a.js:5:1",
        "not a line",
        "",
      ].join("\n"),
    );
    expect(name(0x1008)).toBe("JS:*small a.js:5:1");
    expect(name(0x1050)).toBe("JS:*big a.js:4:1");
    expect(name(0x2010)).toBe("JS:*big a.js:4:1");
    expect(name(0x3000)).toBeUndefined();
    expect(jitNames("1000 100 JS:*relayBatch a.js:1:1\n1040 40 JS:*relayPlain a.js:3:1")(0x1050)).toBe("JS:*relayPlain a.js:3:1");
    expect(jitNames("1000 100 JS:*relayBatch a.js:1:1\n1040 40 JS:*relayPlain a.js:3:1")(0x1090)).toBe("JS:*relayBatch a.js:1:1");
    expect(jitNames("")(0x1000)).toBeUndefined();
  });
});
