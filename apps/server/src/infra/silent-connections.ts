import type { Server } from "node:http";
import type { Socket } from "node:net";

/**
 * Ends, on a stop, the connections that never sent a byte: a browser's or a balancer's connection
 * opened ahead of a request, or a client's pool that opened one it did not use. Node counts such a
 * connection active from its accept until the headers timeout (60 s), so neither `server.close()`
 * nor `closeIdleConnections()` ends it, and the stop waited for it until the shutdown timeout.
 *
 * Tracking costs a set entry and a shared listener per connection, nothing per request.
 */
export function trackSilentConnections(server: Server) {
  const open = new Set<Socket>();
  function forget(this: Socket) {
    open.delete(this);
  }
  server.on("connection", (socket: Socket) => {
    open.add(socket);
    socket.on("close", forget);
  });
  // Silent at the last look: ended at the next one, so bytes already on their way get one interval to be read.
  let silent = new Set<Socket>();
  return {
    /** Ends the connections that have read nothing since the last call; call it at intervals during a stop. */
    closeSilent() {
      const now = new Set<Socket>();
      for (const socket of open) {
        if (socket.bytesRead > 0) continue;
        if (silent.has(socket)) socket.destroy();
        else now.add(socket);
      }
      silent = now;
    },
  };
}
