import WebSocket from "ws";

/**
 * Raw clients for the fuzz suite: they send bytes exactly as given, which the library clients
 * (ws with JSON helpers, socket.io-client) would refuse to produce, and report everything they
 * receive in order.
 */

export interface Closed {
  code: number;
  reason: string;
}

/** A plain WebSocket that hands each text message and the close to its listeners. */
export class RawSocket {
  closed: Closed | undefined;
  private readonly closeListeners: ((closed: Closed) => void)[] = [];
  private readonly textListeners: ((text: string) => void)[] = [];
  /**
   * What arrived before the first listener: a server may speak first (the Engine.IO open packet),
   * and ws can emit it on the tick after `open`, before the awaiting caller has attached anything.
   */
  private backlog: string[] | undefined = [];

  private constructor(readonly socket: WebSocket) {
    socket.on("message", (data: Buffer, isBinary: boolean) => {
      const text = isBinary ? `<binary ${data.length} bytes>` : data.toString();
      if (this.backlog !== undefined) this.backlog.push(text);
      else for (const listener of this.textListeners) listener(text);
    });
    socket.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const listener of this.closeListeners) listener(this.closed);
    });
    // An error is followed by a close; the close is what the tests look at.
    socket.on("error", () => undefined);
  }

  static open(url: string, timeoutMs = 5_000): Promise<RawSocket> {
    const raw = new RawSocket(new WebSocket(url, { perMessageDeflate: false }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        raw.socket.terminate();
        reject(new Error(`no WebSocket connection to ${url} within ${timeoutMs}ms`));
      }, timeoutMs);
      raw.socket.once("open", () => {
        clearTimeout(timer);
        resolve(raw);
      });
      raw.socket.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  /** Adds a listener for text messages; the first one also gets what arrived before it. */
  onText(listener: (text: string) => void): void {
    this.textListeners.push(listener);
    const backlog = this.backlog;
    this.backlog = undefined;
    for (const text of backlog ?? []) listener(text);
  }

  onClose(listener: (closed: Closed) => void): void {
    if (this.closed !== undefined) listener(this.closed);
    else this.closeListeners.push(listener);
  }

  /** Resolves with the close, or undefined if the connection is still open after `timeoutMs`. */
  closedWithin(timeoutMs: number): Promise<Closed | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      this.onClose((closed) => {
        clearTimeout(timer);
        resolve(closed);
      });
    });
  }

  send(data: string | Buffer, binary: boolean): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(data, { binary });
  }

  close(): void {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) this.socket.terminate();
  }
}

/** What a raw Socket.IO connection receives on the default namespace. */
export type SioInbound =
  | { readonly kind: "ack"; readonly id: string; readonly args: unknown }
  | { readonly kind: "event"; readonly name: unknown; readonly args: unknown[] }
  /** Anything else: a disconnect packet, a connect error, text that is not a packet. */
  | { readonly kind: "other"; readonly text: string };

/**
 * Engine.IO v4 / Socket.IO v5 spoken by hand over a plain WebSocket to
 * `/socket.io/?EIO=4&transport=websocket`: the engine `open` packet arrives, the client sends
 * `40`, the server confirms with `40{"sid":...}`; engine pings (`2`) are answered with `3`.
 * Frames go out through `raw`: a Socket.IO packet as an engine `message` (`4` + packet), binary
 * frames as they are (an engine message of binary data).
 */
export class RawSocketIo {
  private readonly listeners: ((inbound: SioInbound) => void)[] = [];

  private constructor(readonly raw: RawSocket) {}

  static async open(httpUrl: string, timeoutMs = 5_000): Promise<RawSocketIo> {
    const raw = await RawSocket.open(`${httpUrl.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`, timeoutMs);
    const client = new RawSocketIo(raw);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no Socket.IO connect within ${timeoutMs}ms`)), timeoutMs);
      raw.onClose((closed) => reject(new Error(`closed during the Socket.IO handshake: ${closed.code} ${closed.reason}`)));
      let connected = false;
      raw.onText((text) => {
        if (text === "2") {
          raw.send("3", false);
          return;
        }
        if (text.startsWith("0")) {
          raw.send("40", false);
          return;
        }
        if (!connected && text.startsWith("40")) {
          connected = true;
          clearTimeout(timer);
          resolve();
          return;
        }
        if (!connected && text.startsWith("44")) {
          clearTimeout(timer);
          reject(new Error(`Socket.IO connect refused: ${text}`));
          return;
        }
        const inbound = decode(text);
        for (const listener of client.listeners) listener(inbound);
      });
    });
    return client;
  }

  onPacket(listener: (inbound: SioInbound) => void): void {
    this.listeners.push(listener);
  }

  close(): void {
    this.raw.close();
  }
}

/** Decodes an engine message carrying a Socket.IO EVENT or ACK of the default namespace. */
function decode(text: string): SioInbound {
  if (!text.startsWith("4")) return { kind: "other", text };
  const type = text.charAt(1);
  if (type !== "2" && type !== "3") return { kind: "other", text };
  let i = 2;
  while (i < text.length && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
  const id = text.slice(2, i);
  let data: unknown;
  try {
    data = JSON.parse(text.slice(i));
  } catch {
    return { kind: "other", text };
  }
  if (!Array.isArray(data)) return { kind: "other", text };
  if (type === "3") return { kind: "ack", id, args: data[0] };
  return { kind: "event", name: data[0], args: data.slice(1) };
}
