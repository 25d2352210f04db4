import { randomBytes } from "node:crypto";
import WebSocket from "ws";
import type { CrowdCommand, CrowdReport } from "./crowd.ts";

/**
 * Holds many registered /ws peers for a test, in a process of its own so that the test process
 * keeps its event loop (and its file descriptors) for the assertions. Each peer connects, registers,
 * joins its namespace and is counted once its `peer_list` is in; at most `concurrency` set-ups are
 * in flight. Messages are told apart by their first bytes, never parsed: a namespace of 100 sends
 * each peer up to 99 `peer_joined`. Run with `fork(..., { execArgv: ["--import", "tsx"] })`.
 */
/** Set-ups of one peer, at most: a loaded machine drops a connection now and then. */
const MAX_ATTEMPTS = 3;

/** Every peer's socket, held until the process ends. */
const sockets: WebSocket[] = [];

const report = (message: CrowdReport): void => {
  process.send?.(message);
};

/** The type of a server envelope, read from its first bytes (`{"type":"…"`). */
function typeOf(data: WebSocket.RawData): string {
  const head = (data as Buffer).toString("latin1", 0, 32);
  const start = head.indexOf('"type":"');
  if (start < 0) return "";
  const end = head.indexOf('"', start + 8);
  return end < 0 ? "" : head.slice(start + 8, end);
}

function open(command: CrowdCommand): void {
  const { url, count, namespacePrefix, namespaceSize, concurrency, localAddresses } = command;
  let next = 0;
  let ready = 0;
  let failed = 0;
  let lastError = "";
  /** Peers whose set-up failed and that may try again. */
  const retries: { index: number; attempt: number }[] = [];
  const startOne = (): void => {
    const retry = retries.shift();
    if (retry === undefined && next >= count) return;
    const index = retry?.index ?? next++;
    const attempt = retry?.attempt ?? 1;
    const localAddress = localAddresses[index % localAddresses.length];
    const socket = new WebSocket(url, { perMessageDeflate: false, ...(localAddress === undefined ? {} : { localAddress }) });
    sockets.push(socket);
    let done = false;
    const settle = (ok: boolean, reason?: string): void => {
      if (done) return;
      done = true;
      if (ok) ready++;
      else {
        lastError = reason ?? "closed";
        socket.terminate();
        if (attempt < MAX_ATTEMPTS) {
          retries.push({ index, attempt: attempt + 1 });
          startOne();
          return;
        }
        failed++;
      }
      if (ready + failed === count) report({ kind: "opened", ready, failed, lastError });
      else startOne();
    };
    socket.on("open", () => {
      socket.send(JSON.stringify({ type: "register", payload: { public_key: `crowd-${randomBytes(12).toString("hex")}` } }));
    });
    socket.on("message", (data) => {
      if (done) return;
      const type = typeOf(data);
      if (type === "registered") socket.send(JSON.stringify({ type: "join", payload: { namespace: `${namespacePrefix}-${Math.floor(index / namespaceSize)}` } }));
      else if (type === "peer_list") settle(true);
      else if (type === "error") settle(false, (data as Buffer).toString("utf8", 0, 200));
    });
    socket.on("error", (error) => settle(false, error.message));
    socket.on("close", () => settle(false, "closed during set-up"));
  };
  for (let lane = 0; lane < Math.min(concurrency, count); lane++) startOne();
}

process.on("message", (raw: unknown) => {
  const command = raw as CrowdCommand;
  if (command.kind === "open") open(command);
});
// The test ends this process by PID; it also leaves with its parent.
process.on("disconnect", () => process.exit(0));
report({ kind: "up" });
