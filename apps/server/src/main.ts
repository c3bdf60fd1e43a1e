import { buildApp } from "./app.ts";
import type { Config } from "./config/env.ts";

/** Starts Lyss: builds the app, listens, and closes gracefully on SIGTERM or SIGINT. */
export async function startServer(config: Config, options: { migrate?: boolean } = {}) {
  const { app, infra, services } = await buildApp({ config, ...options });
  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  const shownHost = config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;
  const url = `http://${shownHost}:${port}`;
  infra.logger.info({ url, database: infra.db.dialect, redis: Boolean(infra.redis) }, `Lyss is listening on ${url}`);
  if (!(await services.auth.isSetUp())) {
    process.stdout.write(
      [
        "",
        `  Lyss is running at ${url}  (API reference: ${url}/docs)`,
        "  No administrator exists yet. Create the first one with either:",
        `    curl -X POST ${url}/api/v1/auth/setup -H 'content-type: application/json' \\`,
        `      -d '{"email":"admin@example.com","password":"change-me-now","name":"Admin"}'`,
        "    npx lyss admin create --email admin@example.com --password change-me-now",
        "",
      ].join("\n"),
    );
  }

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    infra.logger.info({ signal }, "shutting down: draining in-flight requests");
    const timer = setTimeout(() => {
      infra.logger.error({ timeout_ms: config.shutdownTimeoutMs }, "shutdown timed out; exiting");
      process.exit(1);
    }, config.shutdownTimeoutMs);
    timer.unref();
    try {
      await app.close();
      infra.logger.info("shut down cleanly");
      process.exit(0);
    } catch (error) {
      infra.logger.error({ err: error }, "error while shutting down");
      process.exit(1);
    }
  };
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  process.once("SIGINT", () => void shutdown("SIGINT"));
  return { app, url };
}
