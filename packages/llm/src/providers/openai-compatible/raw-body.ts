import { isUtf8 } from "node:buffer";
import { asBuffer } from "../../common.ts";

const MODEL_KEY = Buffer.from('"model"');
/** The start of an escape of one of the letters of `model` (U+0064 to U+006F). */
const ESCAPED_LETTER = Buffer.from("\\u006");
const USAGE_MEMBER = Buffer.from(',"stream_options":{"include_usage":true}}');
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/** Where the object's closing brace is: the last byte that is not JSON white space. */
function closingBrace(text: Buffer): number {
  let at = text.length - 1;
  while (at > 0 && (text[at] === 0x20 || text[at] === 0x0a || text[at] === 0x0d || text[at] === 0x09)) at--;
  return text[at] === CLOSE_BRACE ? at : -1;
}

/** What of a request decides whether its text can go on as it came. */
interface Request {
  model: string;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
}

/**
 * The client's own JSON text (a chat or embeddings request) to send on as it came, when it is the
 * request the adapter would serialise: no field to drop or change (the caller knows), the model named
 * as the upstream knows it, the text an object from its first byte in valid UTF-8, and at most
 * `stream_options` to add, spliced in as the last member (where the serialised request has it, and where
 * parsers that take the last of keys alike, Go's matching them regardless of case, read it).
 * Undefined when it cannot be (then the request is serialised). `model` must be spelled once and
 * without escapes in the text: a body naming it twice is read by JSON.parse (and so by the router, the
 * access checks and the prices) as its last, and an upstream reading the first would otherwise be sent
 * another model than the one routed and priced.
 */
export function rawJsonBody(
  body: Request,
  raw: Uint8Array | undefined,
  upstreamModel: string,
  includeUsage: boolean,
): Uint8Array | undefined {
  if (raw === undefined || body.model !== upstreamModel) return undefined;
  const text = asBuffer(raw);
  // Text the parser read otherwise than as it is (a byte order mark, bytes that are not UTF-8, which
  // the server's parser took as U+FFFD) goes through serialisation.
  if (text[0] !== OPEN_BRACE || !isUtf8(text)) return undefined;
  const model = text.indexOf(MODEL_KEY);
  if (model < 0 || text.indexOf(MODEL_KEY, model + 1) >= 0 || text.indexOf(ESCAPED_LETTER) >= 0) return undefined;
  const options = body.stream_options;
  if (!includeUsage) return options === undefined || body.stream ? text : undefined;
  if (options?.include_usage === true) return text;
  const close = options === undefined ? closingBrace(text) : -1;
  if (close < 0) return undefined;
  return Buffer.concat([text.subarray(0, close), USAGE_MEMBER]);
}
