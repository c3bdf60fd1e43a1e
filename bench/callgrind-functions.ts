import fs from "node:fs";

/**
 * Where the instructions of one callgrind dump went, by function: native functions by their symbols,
 * JavaScript compiled by V8 by the names in the process's `/tmp/perf-<pid>.map` (written when Node runs
 * with `--perf-basic-prof`), so that the count of a change can be told apart function by function, which
 * CPU time on a shared machine cannot. A function's inclusive count is what callgrind charges to its
 * calls; a function that calls itself again further down (a promise job running the next one, say)
 * counts its nested part more than once, so inclusive counts of the outer frames overlap.
 */

interface MappedCode {
  start: number;
  end: number;
  name: string;
  /** Its line in the map: V8 writes code at an address freed by code collected before, so a later line wins. */
  line: number;
}

function readPerfMap(file: string): MappedCode[] {
  const symbols: MappedCode[] = [];
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const first = line.indexOf(" ");
    const second = line.indexOf(" ", first + 1);
    if (first < 0 || second < 0) continue;
    const start = Number.parseInt(line.slice(0, first), 16);
    symbols.push({
      start,
      end: start + Number.parseInt(line.slice(first + 1, second), 16),
      name: line.slice(second + 1),
      line: symbols.length,
    });
  }
  return symbols.sort((a, b) => a.start - b.start);
}

/**
 * The JavaScript function at an address (callgrind names code without a symbol `0x…`): of the map's
 * entries that hold the address, the one written last. Code V8 collected leaves its entry in the map,
 * and new code written over its place has its own later one: taking any entry that holds the address
 * named the relay's frame loop after Node's header writer that had been there before.
 */
function resolver(symbols: MappedCode[]) {
  const longest = symbols.reduce((most, symbol) => Math.max(most, symbol.end - symbol.start), 0);
  return (name: string): string => {
    if (!/^0x[0-9a-f]+$/.test(name)) return name;
    const address = Number.parseInt(name, 16);
    // The last entry that starts at or before the address, then back over those that may still hold it.
    let low = 0;
    let high = symbols.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if ((symbols[middle] as MappedCode).start <= address) low = middle + 1;
      else high = middle - 1;
    }
    let found: MappedCode | undefined;
    for (let index = high; index >= 0; index--) {
      const symbol = symbols[index] as MappedCode;
      if (symbol.start + longest <= address) break;
      if (address < symbol.end && (!found || symbol.line > found.line)) found = symbol;
    }
    return found ? `JS ${found.name.replace(/^JS:/, "")}` : name;
  };
}

/**
 * Self and inclusive counts of one event by function in a dump (one thread's file): instructions
 * (`Ir`) by default, or one the dump has besides (with `--cache-sim`, `ILmr`: instruction fetches that
 * missed the last level).
 */
export function functionCounts(dumpFile: string, perfMapFile: string | undefined, event = "Ir") {
  const resolve = resolver(perfMapFile && fs.existsSync(perfMapFile) ? readPerfMap(perfMapFile) : []);
  const names = new Map<string, string>();
  // callgrind names each function in full once, then by its number: `fn=(12) name`, later `fn=(12)`.
  const named = (text: string) => {
    const match = /^\((\d+)\)(?: (.*))?$/.exec(text.trim());
    if (!match) return resolve(text.trim());
    if (match[2] !== undefined) names.set(match[1] as string, resolve(match[2]));
    return names.get(match[1] as string) ?? `(${match[1]})`;
  };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, value: number) => map.set(key, (map.get(key) ?? 0) + value);
  let fn = "";
  let callee = "";
  let call = false;
  // A cost line is a position, then the events in the order the `events:` line names them (trailing zeros left out).
  let column = 1;
  for (const line of fs.readFileSync(dumpFile, "utf8").split("\n")) {
    if (line.startsWith("events:")) {
      column = line.slice(7).trim().split(/\s+/).indexOf(event) + 1;
      if (column === 0) throw new Error(`${dumpFile} has no event ${event}`);
    } else if (line.startsWith("fn=")) fn = named(line.slice(3));
    else if (line.startsWith("cfn=")) callee = named(line.slice(4));
    else if (line.startsWith("calls=")) call = true;
    else if (/^[0-9+\-*]/.test(line)) {
      const cost = Number(line.split(" ")[column] ?? 0);
      if (call) {
        if (callee !== fn) add(inclusive, fn, cost);
        call = false;
      } else {
        add(self, fn, cost);
        add(inclusive, fn, cost);
      }
    }
  }
  return { self, inclusive };
}

/** The top functions of a dump, per request: inclusive for JavaScript (where the time is spent from), self for all. */
export function functionReport(dumpFile: string, perfMapFile: string | undefined, requests: number, count = 40): string {
  const { self, inclusive } = functionCounts(dumpFile, perfMapFile);
  const top = (map: Map<string, number>, filter: (name: string) => boolean) =>
    [...map.entries()]
      .filter(([name]) => filter(name))
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([name, cost]) => `${(cost / requests).toFixed(0).padStart(9)}  ${name.slice(0, 150)}`);
  // How much distinct code a request runs: each function is code the caches must hold or fetch again.
  const ran = (filter: (name: string) => boolean) =>
    [...self.entries()].filter(([name, cost]) => cost / requests >= 5 && filter(name)).length;
  const isBuiltin = (name: string) => name.startsWith("Builtins_");
  return [
    `functions run per request (5 or more instructions a request): JavaScript ${ran((name) => name.startsWith("JS "))}, V8's builtins ${ran(isBuiltin)}, native ${ran((name) => !name.startsWith("JS ") && !isBuiltin(name))}`,
    "",
    "instructions per request by JavaScript function, inclusive of what it calls:",
    ...top(inclusive, (name) => name.startsWith("JS ")),
    "",
    "instructions per request by function, self:",
    ...top(self, () => true),
    ...missReport(dumpFile, perfMapFile, requests, count),
  ].join("\n");
}

/** The events of a dump (`Ir`, and with `--cache-sim` the misses). */
function dumpEvents(dumpFile: string): string[] {
  const text = fs.readFileSync(dumpFile, "utf8");
  const at = text.indexOf("\nevents:");
  if (at < 0) return ["Ir"];
  return text
    .slice(at + 8, text.indexOf("\n", at + 1))
    .trim()
    .split(/\s+/);
}

/**
 * With `--cache-sim`: the functions whose own code and data missed the last level most a request. Code
 * spread over many functions is fetched again on each request: these are where its fetches land.
 */
function missReport(dumpFile: string, perfMapFile: string | undefined, requests: number, count: number): string[] {
  const events = dumpEvents(dumpFile);
  const lines: string[] = [];
  for (const [event, what] of [
    ["ILmr", "instruction fetches that missed the last level"],
    ["DLmr", "data reads that missed the last level"],
  ] as const) {
    if (!events.includes(event)) continue;
    const { self } = functionCounts(dumpFile, perfMapFile, event);
    const total = [...self.values()].reduce((sum, value) => sum + value, 0);
    lines.push("", `${what} per request by function, self (${(total / requests).toFixed(0)} in all):`);
    for (const [name, misses] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, count)) {
      lines.push(`${(misses / requests).toFixed(1).padStart(9)}  ${name.slice(0, 150)}`);
    }
  }
  return lines;
}
