import http from "node:http";
import type { AddressInfo } from "node:net";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { trackSilentConnections } from "./silent-connections.ts";

const servers: http.Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function listening() {
  const server = http.createServer((_request, response) => response.end("ok"));
  servers.push(server);
  const connections = trackSilentConnections(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, connections, port: (server.address() as AddressInfo).port };
}

/** A client connection, with whether it has closed and what it has read. */
async function connect(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  const state = { closed: false, text: "" };
  socket.setEncoding("utf8").on("data", (chunk: string) => {
    state.text += chunk;
  });
  socket.on("close", () => {
    state.closed = true;
  });
  await new Promise((resolve) => socket.once("connect", resolve));
  return { socket, state };
}

const tick = (ms = 50) => new Promise((resolve) => setTimeout(resolve, ms));

describe("trackSilentConnections", () => {
  it("ends a connection silent at two looks in a row, and leaves one that sent a request in between", async () => {
    const { server, connections, port } = await listening();
    const silent = await connect(port);
    const late = await connect(port);
    await tick();
    connections.closeSilent();
    // Bytes that arrive between two looks keep the connection: the request is answered.
    late.socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await tick();
    connections.closeSilent();
    await tick();
    expect(silent.state.closed).toBe(true);
    expect(late.state.closed).toBe(false);
    expect(late.state.text).toMatch(/^HTTP\/1.1 200 OK[\s\S]*ok$/);
    // Node itself leaves the silent connection to its headers timeout: a stop would have waited for it.
    const untracked = await connect(port);
    await tick();
    server.closeIdleConnections();
    await tick();
    expect(untracked.state.closed).toBe(false);
    late.socket.destroy();
    untracked.socket.destroy();
  });

  it("does not end a connection seen silent only once", async () => {
    const { connections, port } = await listening();
    const client = await connect(port);
    await tick();
    connections.closeSilent();
    await tick();
    expect(client.state.closed).toBe(false);
    client.socket.destroy();
  });
});
