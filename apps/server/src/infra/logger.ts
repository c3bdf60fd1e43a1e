import pino, { type Logger, type LoggerOptions } from "pino";

/** Field names whose values never reach a log line, whether logged at the top level or one level down. */
const SECRET_FIELDS = [
  "password",
  "new_password",
  "current_password",
  "password_hash",
  "access_token",
  "refresh_token",
  "token",
  "secret",
  "api_key",
  "apiKey",
  "key",
  "credentials",
];

/** Paths whose values never reach a log line. */
export const REDACTED_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-api-key"]',
  'req.headers["api-key"]',
  'res.headers["set-cookie"]',
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((field) => `*.${field}`),
];

export function createLogger(level: LoggerOptions["level"], destination?: pino.DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { service: "lyss" },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}
