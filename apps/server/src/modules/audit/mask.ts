const SECRET_KEY = /pass(word)?|secret|token|api[-_]?key|credential|authorization|^key$|_key$|hash/i;

/** A deep copy with every secret-looking field replaced by a mask, for audit before/after images. */
export function maskSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(maskSecrets);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) {
      out[key] = SECRET_KEY.test(key) && inner !== null && inner !== undefined ? "***" : maskSecrets(inner);
    }
    return out;
  }
  return value;
}
