import { asRecord } from "../../common.ts";

/** The JSON-schema keys Gemini's OpenAPI-subset schema accepts; others are left out. */
const ALLOWED = new Set([
  "description",
  "title",
  "nullable",
  "enum",
  "required",
  "minItems",
  "maxItems",
  "minProperties",
  "maxProperties",
  "minLength",
  "maxLength",
  "pattern",
  "minimum",
  "maximum",
  "default",
  "example",
  "propertyOrdering",
]);

/** Formats Gemini knows; it refuses others (`email`, `uri`, …). */
const FORMATS = new Set(["date-time", "enum", "int32", "int64", "float", "double"]);

const isNullSchema = (schema: unknown) => asRecord(schema).type === "null";

function variants(value: unknown, out: Record<string, unknown>) {
  const list = Array.isArray(value) ? value : [];
  const kept = list.filter((item) => !isNullSchema(item)).map((item) => cleanSchema(item) ?? {});
  if (kept.length < list.length) out.nullable = true;
  if (kept.length === 1) Object.assign(out, kept[0]);
  else if (kept.length > 1) out.anyOf = kept;
}

/** A JSON schema in the subset Gemini accepts: no `$schema`, `additionalProperties`, `$ref`, … */
export function cleanSchema(schema: unknown): Record<string, unknown> | undefined {
  const source = asRecord(schema);
  if (!Object.keys(source).length) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(source)) {
    if (key === "type" && Array.isArray(value)) {
      const types = value.filter((type) => type !== "null");
      if (types.length < value.length) out.nullable = true;
      if (types.length === 1) out.type = types[0];
      else if (types.length > 1) out.anyOf = types.map((type) => ({ type }));
    } else if (key === "type") {
      out.type = value;
    } else if (key === "properties") {
      out.properties = Object.fromEntries(Object.entries(asRecord(value)).map(([name, property]) => [name, cleanSchema(property) ?? {}]));
    } else if (key === "items") {
      out.items = cleanSchema(value) ?? {};
    } else if (key === "anyOf" || key === "oneOf") {
      variants(value, out);
    } else if (key === "const") {
      out.enum = [value];
    } else if (key === "format") {
      if (typeof value === "string" && FORMATS.has(value)) out.format = value;
    } else if (ALLOWED.has(key)) {
      out[key] = value;
    }
  }
  return out;
}

/** Function parameters for Gemini: left out when the schema declares no properties (Gemini refuses those). */
export function cleanParameters(schema: unknown): Record<string, unknown> | undefined {
  const cleaned = cleanSchema(schema);
  if (!cleaned) return undefined;
  if (cleaned.type === "object" && !Object.keys(asRecord(cleaned.properties)).length) return undefined;
  return cleaned;
}
