import { describe, expect, it } from "vitest";
import { joinUrl, keptUrls } from "./common.ts";

describe("joinUrl", () => {
  it("joins a base and a path with exactly one slash between, however each is spelled", () => {
    expect(joinUrl("https://api.example.com", "/v1/chat/completions")).toBe("https://api.example.com/v1/chat/completions");
    expect(joinUrl("https://api.example.com/", "v1/models")).toBe("https://api.example.com/v1/models");
    expect(joinUrl("https://gw.example.com/proxy//", "//v1/embeddings")).toBe("https://gw.example.com/proxy/v1/embeddings");
  });

  it("joins the same base and path alike a second time, and another base on its own", () => {
    const first = joinUrl("http://127.0.0.1:9000/", "/v1/chat/completions");
    expect(joinUrl("http://127.0.0.1:9000/", "/v1/chat/completions")).toBe(first);
    expect(joinUrl("http://127.0.0.1:9000", "/v1/models")).toBe("http://127.0.0.1:9000/v1/models");
    expect(joinUrl("http://127.0.0.1:9001/", "/v1/chat/completions")).toBe("http://127.0.0.1:9001/v1/chat/completions");
  });

  it("keeps joining correctly past the number of bases and of paths it keeps", () => {
    for (let port = 0; port < 2500; port++) expect(joinUrl(`http://10.0.0.1:${port}/`, "/v1/x")).toBe(`http://10.0.0.1:${port}/v1/x`);
    expect(joinUrl("http://10.0.0.1:7/", "/v1/x")).toBe("http://10.0.0.1:7/v1/x");
    for (let model = 0; model < 250; model++)
      expect(joinUrl("http://10.0.0.2/", `/v1beta/models/m${model}`)).toBe(`http://10.0.0.2/v1beta/models/m${model}`);
    expect(joinUrl("http://10.0.0.2", "v1beta/models/m3")).toBe("http://10.0.0.2/v1beta/models/m3");
  });
});

describe("keptUrls", () => {
  it("makes each URL once per base and key, and makes it again once the bound has let it go", () => {
    const made: string[] = [];
    const url = keptUrls((base, key) => {
      made.push(`${base}|${key}`);
      return `${base}${key}`;
    });
    expect(url("http://a", "/x")).toBe("http://a/x");
    expect(url("http://a", "/x")).toBe("http://a/x");
    expect(url("http://b", "/x")).toBe("http://b/x");
    expect(made).toEqual(["http://a|/x", "http://b|/x"]);
    // Past the keys kept for one base, that base's URLs are made afresh (and still right).
    for (let index = 0; index < 100; index++) url("http://a", `/k${index}`);
    expect(url("http://a", "/x")).toBe("http://a/x");
    expect(made.filter((entry) => entry === "http://a|/x")).toHaveLength(2);
  });
});
