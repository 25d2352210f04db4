import WebSocket from "ws";
import type { Envelope } from "./peers.ts";

/** A Socket.IO client over a raw Engine.IO WebSocket: sends and records Socket.IO packets as text. */
export class RawSocketIo {
  /** Every Socket.IO packet received (Engine.IO `4` prefix removed), in order; binary frames as "<binary>". */
  readonly packets: string[] = [];
  readonly closed: Promise<number>;
  private waiters: { match: (packet: string) => boolean; resolve: (packet: string) => void }[] = [];
  private nextId = 1000;

  private constructor(private readonly socket: WebSocket) {
    socket.on("message", (data: Buffer, isBinary: boolean) => {
      const text = isBinary ? "<binary>" : data.toString();
      if (text === "2") {
        socket.send("3"); // Engine.IO ping
        return;
      }
      if (!text.startsWith("4")) return; // open (0), noop (6)
      const packet = text.slice(1);
      const index = this.waiters.findIndex((waiter) => waiter.match(packet));
      if (index >= 0) this.waiters.splice(index, 1)[0]?.resolve(packet);
      this.packets.push(packet);
    });
    this.closed = new Promise((resolve) => socket.on("close", (code) => resolve(code)));
  }

  /** Opens the Engine.IO session and connects to the default namespace. */
  static async connect(port: number): Promise<RawSocketIo> {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
    const client = new RawSocketIo(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
    const connected = client.next((packet) => packet.startsWith("0"));
    client.send("0");
    const reply = await connected;
    if (!reply.startsWith('0{"sid":')) throw new Error(`Socket.IO connect refused: ${reply}`);
    return client;
  }

  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** Sends a Socket.IO packet as an Engine.IO message: text, or a binary attachment. */
  send(packet: string | Buffer): void {
    if (typeof packet === "string") this.socket.send(`4${packet}`);
    else this.socket.send(packet, { binary: true });
  }

  /** The first packet (already received or still to come) that matches. */
  next(match: (packet: string) => boolean, timeoutMs = 5_000): Promise<string> {
    const received = this.packets.find(match);
    if (received !== undefined) return Promise.resolve(received);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching packet within ${timeoutMs}ms; received ${JSON.stringify(this.packets)}`)), timeoutMs);
      this.waiters.push({
        match,
        resolve: (packet) => {
          clearTimeout(timer);
          resolve(packet);
        },
      });
    });
  }

  /** Emits an event with an ack id and resolves with the acknowledgement's argument. */
  request(event: string, body: unknown): Promise<Envelope> {
    return this.requestJson(event, JSON.stringify(body));
  }

  /**
   * As request, with the argument given as JSON text: for arguments JSON.stringify cannot write
   * (nested deeper than its stack allows).
   */
  async requestJson(event: string, bodyJson: string): Promise<Envelope> {
    const id = this.nextId++;
    const reply = this.next((packet) => packet.startsWith(`3${id}[`));
    this.send(`2${id}[${JSON.stringify(event)},${bodyJson}]`);
    return ackArgument(await reply, id);
  }

  close(): void {
    this.socket.close();
  }
}

/** The argument of the ACK packet `3<id>[arg]`. */
export function ackArgument(packet: string, id: number): Envelope {
  const args = JSON.parse(packet.slice(`3${id}`.length)) as unknown[];
  if (args.length !== 1) throw new Error(`an ack with ${args.length} arguments: ${packet}`);
  return args[0] as Envelope;
}
