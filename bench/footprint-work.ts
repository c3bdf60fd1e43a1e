import http from "node:http";

/**
 * Synthetic work for `bench/footprint.ts`, preloaded into the bare proxy (`--import`): before each
 * request the proxy runs `FOOTPRINT_FUNCTIONS` distinct small functions (each its own compiled code)
 * and allocates `FOOTPRINT_KB` kilobytes of small objects, held until the answer is done with
 * `FOOTPRINT_RETAIN=1` (through a `close` listener on the answer, a small cost of its own) or dropped
 * at once otherwise. It tells what code spread over more functions, and
 * objects that live as long as a request, cost on this machine apart from the instructions they run.
 */

const functions = Number(process.env.FOOTPRINT_FUNCTIONS ?? 0);
const objects = Math.floor((Number(process.env.FOOTPRINT_KB ?? 0) * 1024) / 24);
const retain = process.env.FOOTPRINT_RETAIN === "1";

// Each function differs in its constants and property names, so V8 compiles each on its own.
const work: ((x: number) => number)[] = [];
for (let i = 0; i < functions; i++) {
  work.push(
    new Function(
      "x",
      `let a = x * ${i + 3} + ${i}; if (a % ${i + 7} === ${i % 5}) a += ${i * 13};` +
        ` a = (a ^ ${i * 7919}) + (a >> ${(i % 9) + 1}); const o = { k${i}: a, m${i}: a + ${i} };` +
        ` return o.k${i} - o.m${i} + (a & ${255 - (i % 200)});`,
    ) as (x: number) => number,
  );
}

let sink = 0;
let dropped: unknown;

function before(res: http.ServerResponse) {
  for (let i = 0; i < functions; i++) sink += (work[i] as (x: number) => number)((i + sink) & 1023);
  if (objects === 0) return;
  const junk = new Array(objects);
  for (let i = 0; i < objects; i++) junk[i] = { a: i, b: sink };
  if (retain) res.once("close", () => junk.length);
  else dropped = junk;
}

const createServer = http.createServer;
http.createServer = ((options: http.ServerOptions, handler: http.RequestListener) =>
  createServer(options, (req, res) => {
    before(res);
    return handler(req, res);
  })) as typeof http.createServer;
// (Read once so that the last request's objects are not dead code to the compiler.)
setInterval(() => (dropped === undefined ? sink : sink + 1), 60_000).unref();
