#!/usr/bin/env node
// Builds the server for production: one ES module bundle of apps/server/src and the workspace packages
// in apps/server/dist (dependencies stay in node_modules). `bin/lyss.js` runs it while it is newer than
// every source file, so a start skips compiling TypeScript. Run by `npm install` and `npm run build`.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const server = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const root = path.resolve(server, "../..");
// Left out of the bundle: native addons and packages that read their own files at run time (the
// tokenizer's vocabulary file, read when a usage estimate first needs it).
const external = ["better-sqlite3", "pg-native", "@fastify/swagger-ui", "gpt-tokenizer", "tsx", "esbuild"];

const outdir = path.join(server, "dist");
rmSync(outdir, { recursive: true, force: true });
const started = performance.now();
const { outputFiles } = await build({
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
  write: false,
});

/**
 * esbuild writes the code's strings in ASCII but keeps comments as they are, and one character above
 * U+00FF anywhere in a file (a typographic apostrophe in undici's comments, say) makes V8 hold that
 * file's whole source as two bytes a character for as long as the process runs. Each non-ASCII
 * character goes out as its \u escape, which means the same character in code and is only text in a
 * comment: a worker starts with 10 MiB less resident memory (106 against 116 MiB, three starts each).
 */
const ascii = (text) => text.replace(/[\u0080-\uffff]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`);

for (const file of outputFiles) {
  mkdirSync(path.dirname(file.path), { recursive: true });
  writeFileSync(file.path, file.path.endsWith(".js") ? ascii(file.text) : file.contents);
}
process.stdout.write(`built ${path.relative(root, outdir)} in ${Math.round(performance.now() - started)} ms\n`);
