import { EventEmitter } from "node:events";
import type { IncomingMessage } from "node:http";
import type { Server as EngineServer } from "engine.io";
import { describe, expect, it } from "vitest";
import { AddressHold } from "../../src/limits/address-quota.ts";
import { ConnectionGate, isRefusal, type ConnectionGateOptions, type GateVerdict } from "../../src/limits/connection-gate.ts";
import type { AccessTokenVerifier } from "../../src/trust/access-tokens.ts";
import { clientAddressResolver } from "../../src/trust/client-address.ts";
import { originPolicy } from "../../src/trust/origins.ts";

/** A request as the gate reads it: url, headers, and its socket's address and close. */
function request(url: string, headers: Record<string, string> = {}, address = "::ffff:10.0.0.1", method = "GET"): IncomingMessage {
  const socket = Object.assign(new EventEmitter(), { remoteAddress: address });
  return { url, headers, socket, method } as unknown as IncomingMessage;
}

/** A gate whose count takes holds from an open list (max `cap` per address) and records releases. */
function gateWith(options: Partial<ConnectionGateOptions> & { cap?: number } = {}): { gate: ConnectionGate; open: Map<string, number>; released: string[] } {
  const open = new Map<string, number>();
  const released: string[] = [];
  const gate = new ConnectionGate({
    origins: originPolicy(["https://app.example"]),
    tokens: undefined,
    clientAddress: clientAddressResolver([]),
    addressBanned: () => false,
    count: (incoming, address) => {
      const held = open.get(address) ?? 0;
      if (held >= (options.cap ?? 10)) return "count";
      open.set(address, held + 1);
      const hold = new AddressHold(address, (gone) => {
        released.push(gone);
        open.set(gone, (open.get(gone) ?? 1) - 1);
      });
      hold.bindTo(incoming.socket);
      return hold;
    },
    ...options,
  });
  return { gate, open, released };
}

const verdictOf = async (value: GateVerdict | Promise<GateVerdict>): Promise<GateVerdict> => value;

describe("connection gate", () => {
  it("admits a WebSocket upgrade with its client address in normal form, counted until its socket closes", async () => {
    const { gate, open, released } = gateWith();
    const upgrade = request("/ws", { origin: "https://app.example" });
    expect(await verdictOf(gate.admitWebSocket(upgrade))).toEqual({ address: "10.0.0.1", claims: undefined });
    expect(open.get("10.0.0.1")).toBe(1);
    upgrade.socket.emit("close");
    expect(released).toEqual(["10.0.0.1"]);
  });

  it("counts first (429), then a ban (403), then the Origin (403), releasing what a later check refuses", async () => {
    const { gate, open, released } = gateWith({ cap: 1, addressBanned: (address) => address === "10.0.0.9" });
    expect(await verdictOf(gate.admitWebSocket(request("/ws", {}, "10.0.0.9")))).toEqual({ status: 403, reason: "banned" });
    expect(await verdictOf(gate.admitWebSocket(request("/ws", { origin: "https://evil.example" })))).toEqual({ status: 403, reason: "origin not allowed" });
    expect(released).toEqual(["10.0.0.9", "10.0.0.1"]);
    expect(open.get("10.0.0.1")).toBe(0);
    expect(isRefusal(await verdictOf(gate.admitWebSocket(request("/ws"))))).toBe(false);
    expect(await verdictOf(gate.admitWebSocket(request("/ws")))).toMatchObject({ status: 429 });
  });

  it("checks the token last, and releases the count of a refused one", async () => {
    const tokens: AccessTokenVerifier = {
      verify: (token) =>
        Promise.resolve(token === "good" ? { ok: true, claims: { subject: "s", namespaces: undefined, expiresAt: undefined } } : { ok: false, status: 401, reason: "access token required" }),
    };
    const { gate, open } = gateWith({ tokens });
    expect(await verdictOf(gate.admitWebSocket(request("/ws?token=good")))).toEqual({ address: "10.0.0.1", claims: { subject: "s", namespaces: undefined, expiresAt: undefined } });
    expect(await verdictOf(gate.admitWebSocket(request("/ws", { authorization: "Bearer bad" })))).toEqual({ status: 401, reason: "access token required" });
    expect(open.get("10.0.0.1")).toBe(1);
    expect(await gate.admitSocketIo(request("/socket.io/?EIO=4&transport=polling"), "good")).toMatchObject({ claims: { subject: "s" } });
    expect(await gate.admitSocketIo(request("/socket.io/?EIO=4&transport=polling&token=good"), undefined)).toMatchObject({ claims: { subject: "s" } });
    expect(await gate.admitSocketIo(request("/socket.io/?EIO=4&transport=polling"), undefined)).toMatchObject({ status: 401 });
  });

  it("Engine.IO: a new session is counted until the session closes, not its handshake's socket; later requests only pass origin and ban", () => {
    const { gate, open, released } = gateWith();
    const engine = new EventEmitter();
    gate.watchSessions(engine as unknown as EngineServer);
    const handshake = request("/socket.io/?EIO=4&transport=polling");
    expect(gate.checkEngineRequest(handshake)).toBeUndefined();
    const session = Object.assign(new EventEmitter(), { request: handshake });
    engine.emit("connection", session);
    handshake.socket.emit("close");
    expect(released).toEqual([]);
    expect(gate.checkEngineRequest(request("/socket.io/?EIO=4&transport=polling&sid=abc"))).toBeUndefined();
    expect(gate.checkEngineRequest(request("/socket.io/?EIO=4&transport=polling&sid=abc", { origin: "https://evil.example" }))).toEqual({ status: 403, reason: "origin not allowed" });
    // A CORS preflight opens no session: it is not counted.
    expect(gate.checkEngineRequest(request("/socket.io/?EIO=4&transport=polling", { origin: "https://app.example" }, "10.0.0.1", "OPTIONS"))).toBeUndefined();
    expect(open.get("10.0.0.1")).toBe(1);
    session.emit("close");
    expect(released).toEqual(["10.0.0.1"]);
    // A handshake Engine.IO refuses releases its count.
    const failed = request("/socket.io/?EIO=3&transport=polling");
    expect(gate.checkEngineRequest(failed)).toBeUndefined();
    engine.emit("connection_error", { req: failed, code: 5 });
    expect(released).toEqual(["10.0.0.1", "10.0.0.1"]);
  });
});
