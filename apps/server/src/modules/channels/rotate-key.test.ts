import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { startSimulator, type UpstreamSimulator } from "@lyss/llm/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAccessToken, createChannel, createTestApp, freshStorage, setupAdmin, type TestApp } from "../../test/test-app.ts";

const run = promisify(execFile);
const CLI = path.resolve(import.meta.dirname, "../../../bin/lyss.js");

async function callThrough(app: TestApp, key: string) {
  const response = await app.app.inject({
    method: "POST",
    url: "/v1/chat/completions",
    headers: { authorization: `Bearer ${key}` },
    payload: { model: "m", messages: [{ role: "user", content: "hi" }] },
  });
  return response.statusCode;
}

describe("master key rotation", () => {
  let sim: UpstreamSimulator;
  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(async () => sim.close());

  for (const mode of ["key file", "LYSS_SECRET_KEY"] as const) {
    it(`re-encrypts channel credentials under a new key (${mode})`, async () => {
      const storage = await freshStorage();
      const oldKey = "a".repeat(64);
      const newKey = "b".repeat(64);
      const env: Record<string, string> = mode === "LYSS_SECRET_KEY" ? { LYSS_SECRET_KEY: oldKey } : {};
      try {
        const first = await createTestApp({ storage, env });
        const admin = await setupAdmin(first);
        await createChannel(first, admin.token, admin.tenant.id, {
          name: "c",
          provider: "openai",
          base_url: sim.url,
          credentials: { api_key: "sk-rotate-me-please" },
          models: ["m"],
        });
        const key = (await createAccessToken(first, admin.token, admin.tenant.id)).key;
        const before = await first.infra.db.kysely.selectFrom("channels").select("credentials_sealed").executeTakeFirstOrThrow();
        await first.close();
        const keyFile = path.join(storage.dataDir, "secret.key");
        const fileBefore = fs.existsSync(keyFile) ? fs.readFileSync(keyFile, "utf8") : undefined;

        const args = mode === "LYSS_SECRET_KEY" ? [CLI, "rotate-key", "--new-key", newKey] : [CLI, "rotate-key"];
        const { stdout } = await run(process.execPath, args, { env: { PATH: process.env.PATH, ...storage.env, ...env } });
        expect(stdout).toContain("re-encrypted 1 channel(s)");

        const after: Record<string, string> = mode === "LYSS_SECRET_KEY" ? { LYSS_SECRET_KEY: newKey } : {};
        if (mode === "key file") {
          expect(fs.readFileSync(keyFile, "utf8")).not.toBe(fileBefore);
          expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
        }
        const second = await createTestApp({ storage, env: after });
        const sealed = await second.infra.db.kysely.selectFrom("channels").select("credentials_sealed").executeTakeFirstOrThrow();
        expect(sealed.credentials_sealed).not.toBe(before.credentials_sealed);
        sim.reset();
        expect(await callThrough(second, key)).toBe(200);
        expect(sim.requests[0]?.headers.authorization).toBe("Bearer sk-rotate-me-please");
        await second.close();
      } finally {
        await storage.drop();
      }
    });
  }
});
