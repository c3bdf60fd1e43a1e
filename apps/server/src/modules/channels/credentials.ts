import type { Credentials, ProviderSpec } from "@lyss/llm";
import { AppError } from "../../errors/app-error.ts";
import { decryptSecret, encryptSecret } from "../../infra/crypto.ts";

/** `sk-a…wxyz` for secrets long enough to show a little, else stars. */
export function maskSecret(value: string): string {
  return value.length > 12 ? `${value.slice(0, 4)}…${value.slice(-4)}` : "****";
}

/** Checks credentials against the provider's schema and applies its defaults; unknown fields are refused. */
export function validateCredentials(provider: ProviderSpec, input: Credentials): Record<string, string | number> {
  const fields = new Map(provider.credentialSchema.map((field) => [field.name, field]));
  const problems: { field: string; message: string }[] = [];
  for (const name of Object.keys(input)) {
    if (!fields.has(name)) problems.push({ field: `body.credentials.${name}`, message: `not a ${provider.id} credential field` });
  }
  const out: Record<string, string | number> = {};
  for (const field of provider.credentialSchema) {
    const value = input[field.name] ?? field.default;
    if (value === undefined || value === "") {
      if (field.required) problems.push({ field: `body.credentials.${field.name}`, message: "required" });
      continue;
    }
    if (field.type === "number" && typeof value !== "number") {
      problems.push({ field: `body.credentials.${field.name}`, message: "must be a number" });
      continue;
    }
    if (field.type === "select" && field.options && !field.options.some((option) => option.value === value)) {
      problems.push({ field: `body.credentials.${field.name}`, message: "not one of the options" });
      continue;
    }
    out[field.name] = value;
  }
  if (problems.length) {
    throw new AppError("validation_failed", `invalid input: ${problems.map((problem) => problem.field).join(", ")}`, { fields: problems });
  }
  return out;
}

/** What the API shows: secret fields masked, the rest as stored. */
export function maskCredentials(provider: ProviderSpec, credentials: Record<string, string | number>): Record<string, string> {
  const secret = new Set(provider.credentialSchema.filter((field) => field.type === "secret").map((field) => field.name));
  return Object.fromEntries(
    Object.entries(credentials).map(([name, value]) => [name, secret.has(name) ? maskSecret(String(value)) : String(value)]),
  );
}

/** Credentials are sealed with AES-256-GCM, bound to their channel's id. */
export const sealCredentials = (key: Buffer, channelId: string, credentials: Record<string, string | number>) =>
  encryptSecret(key, JSON.stringify(credentials), `channel:${channelId}`);

export const openCredentials = (key: Buffer, channelId: string, sealed: string) =>
  JSON.parse(decryptSecret(key, sealed, `channel:${channelId}`)) as Record<string, string | number>;

/** The origin the adapter joins its paths to: no trailing slash, no trailing API version. */
export function normalizeBaseUrl(url: string): string {
  return url.replace(/\/+$/, "").replace(/\/v\d+(?:(?:alpha|beta)\d*)?$/, "");
}
