import fs from "node:fs";
import path from "node:path";

/**
 * What one part of the gateway's work costs: a gateway built without it, measured beside the whole one
 * (`npx tsx bench/compare.ts HEAD HEAD+usage-write HEAD+admission …`). Each ablation is a few edits of
 * the sources in the benchmark's own throw-away worktree, never of the product: the gateway they build
 * answers the benchmark's requests but is not correct (quotas unsettled, usage lost, …). An edit's text
 * must occur exactly once in its file; a refactor that moves it fails the ablation's test
 * (apps/server/src/modules/gateway/ablations.test.ts) rather than measuring something else.
 */
export interface Ablation {
  /** What is left out, for the results table: "without <what>". */
  what: string;
  edits: { file: string; find: string; replace: string }[];
}

export const ABLATIONS: Record<string, Ablation> = {
  "usage-write": {
    what: "the usage writer (records made and packed, never written)",
    edits: [
      {
        file: "apps/server/src/modules/usage/batch-sink.ts",
        find: "    write: (batch) => send({ batch }, writer()),",
        replace: "    write: () => Promise.resolve(),",
      },
    ],
  },
  "usage-row": {
    what: "the usage record (quotas settled, no record made)",
    edits: [
      {
        file: "apps/server/src/modules/gateway/call.ts",
        find: "  deps.usage.record({",
        replace: "  if (call) return;\n  deps.usage.record({",
      },
    ],
  },
  admission: {
    what: "quota and rate-limit admission and settlement (and their headers)",
    edits: [
      {
        file: "apps/server/src/modules/gateway/routes.ts",
        find: [
          "  const admission = admitCall(relay, token, input.body, candidates);",
          "  const admitted = admission instanceof Promise ? await admission : admission;",
          "  reply.headers(admitted.headers);",
          "  call.candidates = admitted.candidates;",
          "  call.billing = admitted.billing;",
          "",
        ].join("\n"),
        replace: "",
      },
    ],
  },
  "limit-headers": {
    what: "the rate-limit and quota headers",
    edits: [
      {
        file: "apps/server/src/modules/gateway/routes.ts",
        find: "  reply.headers(admitted.headers);\n  call.candidates = admitted.candidates;\n",
        replace: "  call.candidates = admitted.candidates;\n",
      },
    ],
  },
  "frame-work": {
    what: "the stream's frame work (a stream in one piece goes out as its bytes; only its usage frame is parsed)",
    edits: [
      {
        file: "apps/server/src/modules/gateway/stream-batch.ts",
        find: "  const out: RelayedBatch = { parts: [], content: false, finish: false, done: false };\n",
        replace: [
          '  if (batch.bytes && batch.frames[batch.frames.length - 1]?.data === "[DONE]") {',
          "    const usage = batch.frames.find((frame) => frame.data.includes('\"usage\":{'));",
          "    if (usage) state.usage = JSON.parse(usage.data).usage;",
          "    return { parts: [batch.bytes], content: true, finish: true, done: true };",
          "  }",
          "  const out: RelayedBatch = { parts: [], content: false, finish: false, done: false };",
          "",
        ].join("\n"),
      },
    ],
  },
  "stream-relay": {
    what: "the stream relay (the upstream's bytes piped to the client, fixed usage recorded)",
    edits: [
      {
        file: "apps/server/src/modules/gateway/stream-relay.ts",
        find: "    const batches = readFrameBatches(outcome.response.body, channel.provider.streamFormat)[Symbol.asyncIterator]();\n",
        replace: [
          "    {",
          "      clearInterval(keepAlive);",
          "      downstream.commit();",
          "      const b = outcome.response.body;",
          "      await new Promise<void>((done) => {",
          "        b.on('data', (c: Uint8Array) => void downstream.write([c]));",
          "        b.on('end', done);",
          "        b.on('close', done);",
          "      });",
          "      deps.stats.succeeded(channel.id, outcome.latencyMs);",
          "      recordUsage(deps, call, { channel, status: 200, usage: { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30 }, attempts }, startedAt);",
          "      downstream.end();",
          "      return call.reply;",
          "    }",
          "    const batches = readFrameBatches(outcome.response.body, channel.provider.streamFormat)[Symbol.asyncIterator]();",
          "",
        ].join("\n"),
      },
    ],
  },
};

/**
 * `commit+name+name@shape,shape`: the commit, the ablations to build it with, and the only shapes of
 * request its gateway serves (warm-up included; all of them when no `@` part is given).
 */
export function parseTarget(spec: string): { commit: string; ablations: string[]; only?: string[] } {
  const [built = "", served] = spec.split("@");
  const [commit = "", ...ablations] = built.split("+");
  for (const name of ablations) {
    if (!ABLATIONS[name]) throw new Error(`no ablation "${name}" (known: ${Object.keys(ABLATIONS).join(", ")})`);
  }
  return served === undefined ? { commit, ablations } : { commit, ablations, only: served.split(",").filter(Boolean) };
}

/** A source file's text with one ablation's edits made; throws when an edit's text is not there exactly once. */
export function ablatedText(name: string, file: string, text: string): string {
  let out = text;
  for (const edit of ABLATIONS[name]?.edits ?? []) {
    if (edit.file !== file) continue;
    const at = out.indexOf(edit.find);
    if (at < 0 || out.indexOf(edit.find, at + 1) >= 0) {
      throw new Error(`ablation "${name}": the text to replace is not in ${file} exactly once`);
    }
    out = out.slice(0, at) + edit.replace + out.slice(at + edit.find.length);
  }
  return out;
}

/** Makes the ablations' edits in a checkout at `dir`. */
export function ablate(dir: string, names: string[]) {
  for (const name of names) {
    for (const file of new Set(ABLATIONS[name]?.edits.map((edit) => edit.file))) {
      const full = path.join(dir, file);
      fs.writeFileSync(full, ablatedText(name, file, fs.readFileSync(full, "utf8")));
    }
  }
}
