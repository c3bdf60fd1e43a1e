#!/usr/bin/env node
// Runs the TypeScript sources directly: Node 20 has no built-in TypeScript, tsx supplies it.
import { register } from "tsx/esm/api";

register();
await import("../src/cli.ts");
