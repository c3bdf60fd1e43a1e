#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --single-threaded-gc --max-inlined-bytecode-size-cumulative=3680 --max-inlined-bytecode-size=920 --max-inlined-bytecode-size-absolute=9200
// Runs the production build (dist/, made by `npm run build`) when it is newer than every source file;
// otherwise the TypeScript sources directly through tsx (Node 20 has no built-in TypeScript).
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const server = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const built = path.join(server, "dist/lyss.js");

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(file));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(file).mtimeMs);
  }
  return newest;
}

function buildIsFresh() {
  if (process.env.LYSS_FROM_SOURCE === "1" || !existsSync(built)) return false;
  const sources = [
    path.join(server, "src"),
    path.join(server, "../../packages/llm/src"),
    path.join(server, "../../packages/contracts/src"),
  ];
  const newest = Math.max(...sources.map(newestSource));
  return statSync(built).mtimeMs >= newest;
}

if (buildIsFresh()) {
  await import(built);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli.ts");
}
