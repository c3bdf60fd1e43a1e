#!/usr/bin/env node
// Builds the server for production: one ES module bundle of apps/server/src and the workspace packages
// in apps/server/dist (dependencies stay in node_modules). `bin/lyss.js` runs it while it is newer than
// every source file, so a start skips compiling TypeScript. Run by `npm install` and `npm run build`.
import { rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const server = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const root = path.resolve(server, "../..");
// Left out of the bundle: native addons, packages that read their own files at run time, and the
// tokenizer's vocabularies (loaded only when a usage estimate needs them).
const external = ["better-sqlite3", "pg-native", "@fastify/swagger-ui", "gpt-tokenizer", "tsx", "esbuild"];

const outdir = path.join(server, "dist");
rmSync(outdir, { recursive: true, force: true });
const started = performance.now();
await build({
  // The usage writer runs on a thread of its own (src/modules/usage/batch-sink.ts loads it by this name).
  entryPoints: { lyss: path.join(server, "src/cli.ts"), "usage-writer": path.join(server, "src/modules/usage/writer-thread.ts") },
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: true,
  external,
  // Bundled CommonJS helpers still need `require` in an ES module.
  banner: { js: "import { createRequire as __lyssRequire } from 'node:module'; const require = __lyssRequire(import.meta.url);" },
  logLevel: "warning",
});
process.stdout.write(`built ${path.relative(root, outdir)} in ${Math.round(performance.now() - started)} ms\n`);
