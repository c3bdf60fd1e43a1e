import type { ContentPart, ImagePart } from "../../chat-types.ts";
import { asRecord, asString } from "../../common.ts";
import type { GeminiPart } from "./api-types.ts";

const MIME_BY_EXTENSION: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  webp: "image/webp",
  gif: "image/gif",
  heic: "image/heic",
  heif: "image/heif",
  pdf: "application/pdf",
  mp3: "audio/mp3",
  wav: "audio/wav",
  mp4: "video/mp4",
};

/** The media type a URL's extension suggests; Gemini needs one for `fileData`. */
export function guessMimeType(url: string, fallback = "image/jpeg"): string {
  const path = url.split(/[?#]/)[0] ?? "";
  const extension = path.slice(path.lastIndexOf(".") + 1).toLowerCase();
  return MIME_BY_EXTENSION[extension] ?? fallback;
}

const DATA_URL = /^data:([^;,]*)((?:;[^;,]*)*?)(;base64)?,(.*)$/s;

/** A `data:` URL as Gemini inline data, or a remote URL as file data. */
export function mediaPart(url: string, fallbackMime = "image/jpeg"): GeminiPart {
  const match = DATA_URL.exec(url);
  if (!match) return { fileData: { fileUri: url, mimeType: guessMimeType(url, fallbackMime) } };
  const [, mimeType, , base64, payload = ""] = match;
  const data = base64 ? payload : Buffer.from(decodeURIComponent(payload), "utf8").toString("base64");
  return { inlineData: { mimeType: mimeType || fallbackMime, data } };
}

/** One OpenAI content part as a Gemini part; undefined for kinds Gemini cannot take. */
export function contentPart(part: ContentPart): GeminiPart | undefined {
  if (part.type === "text") return { text: String(part.text ?? "") };
  if (part.type === "image_url") return mediaPart((part as ImagePart).image_url.url);
  if (part.type === "input_audio") {
    const audio = asRecord(part.input_audio);
    const data = asString(audio.data);
    return data ? { inlineData: { mimeType: `audio/${asString(audio.format) ?? "wav"}`, data } } : undefined;
  }
  if (part.type === "file") {
    const fileData = asString(asRecord(part.file).file_data);
    return fileData ? mediaPart(fileData, "application/pdf") : undefined;
  }
  return undefined;
}
