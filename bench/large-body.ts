import { median, type Target } from "./gateway-report.ts";
import { api, argument, buildServer, drive, freePort, guard, provision, runMain, startHelper, startLyss, tempDir } from "./harness.ts";

/**
 * What a large request body costs Lyss when it goes on as the client's own bytes against serialised
 * again, in one Lyss (one worker, SQLite): the same conversation to a model the channel knows by its
 * public name (passed on) and to a public name a second channel maps to it (serialised), in paired
 * rounds whose order alternates. CPU is the worker's user + system time per answered request.
 *
 *   npx tsx bench/large-body.ts [--kb 57] [--rounds 6] [--seconds 5] [--connections 20] [--plain]
 */

const kilobytes = Number(argument("--kb", "57"));
const rounds = Number(argument("--rounds", "6"));
const seconds = Number(argument("--seconds", "5"));
const connections = Number(argument("--connections", "20"));
const stream = !process.argv.includes("--plain");

guard(15 * 60_000);

const PASSED = "bench-model";
const MAPPED = "bench-mapped";

async function main() {
  buildServer();
  const upstream = await startHelper("fake-upstream.ts", ["0"]);
  const port = await freePort();
  const lyss = await startLyss(port, tempDir("lyss-large-body-"), { env: { LYSS_WORKERS: "1" } });
  const base = `http://127.0.0.1:${port}`;
  const { auth, token } = await provision(base, upstream.port, []);
  await api(
    base,
    "POST",
    "/api/v1/channels",
    {
      name: "mapped",
      provider: "openai-compatible",
      base_url: `http://127.0.0.1:${upstream.port}`,
      models: [MAPPED],
      model_mapping: { [MAPPED]: PASSED },
    },
    auth,
  );
  await api(base, "PUT", "/api/v1/prices", { scope: "tenant", model: MAPPED, input_per_mtok: 1_000_000, output_per_mtok: 2_000_000 }, auth);

  // Turns of about 570 bytes each, alternating user and assistant.
  const messages = Array.from({ length: Math.max(1, Math.round(kilobytes / 0.57)) }, (_, index) => ({
    role: index % 2 ? "assistant" : "user",
    content: `${"lorem ipsum dolor sit amet ".repeat(20)}${index}`,
  }));
  const bodies = new Map([PASSED, MAPPED].map((model) => [model, JSON.stringify({ model, messages, stream, max_tokens: 32 })]));

  const target: Target = { name: "lyss", origin: base, headers: { authorization: `Bearer ${token.key}` }, pid: lyss.child.pid };
  async function run(model: string, duration: number) {
    const result = await drive(target, connections, stream ? "stream" : "plain", duration, { body: bodies.get(model) });
    if (result.non2xx || result.errors) throw new Error(`${model}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
    return { rps: result.requests / duration, us: result.cpuMicrosPerRequest };
  }

  console.log(`${stream ? "streamed" : "plain"} requests of ${bodies.get(PASSED)?.length} bytes, ${connections} connections`);
  for (const model of [PASSED, MAPPED]) await run(model, 2);
  const ratios: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 ? [MAPPED, PASSED] : [PASSED, MAPPED];
    const measured = new Map<string, { rps: number; us: number }>();
    for (const model of order) measured.set(model, await run(model, seconds));
    const passed = measured.get(PASSED) as { rps: number; us: number };
    const serialised = measured.get(MAPPED) as { rps: number; us: number };
    ratios.push(passed.us / serialised.us);
    console.log(
      `round ${round + 1}: passed on ${passed.rps.toFixed(0)} req/s, ${passed.us.toFixed(0)} µs | serialised ${serialised.rps.toFixed(0)} req/s, ${serialised.us.toFixed(0)} µs | ${(passed.us / serialised.us).toFixed(2)}×`,
    );
  }
  console.log(`CPU per request passed on / serialised, median of ${rounds} rounds: ${median(ratios).toFixed(2)}×`);
}

await runMain(main);
