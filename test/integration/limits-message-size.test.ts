import { describe, expect, it } from "vitest";
import { connectWs, TRANSPORTS, type TestPeer } from "../helpers/peers.ts";
import { useServer } from "../helpers/use-server.ts";

const MAX_MESSAGE_SIZE = 1024;
const fixture = useServer({ config: { max_message_size: MAX_MESSAGE_SIZE } });

const peer = (transport: "ws" | "sio", namespace: string): Promise<TestPeer> => fixture.peer(transport, { namespace });

/** A relay envelope whose JSON text is about `bytes` long. */
const relayOfSize = (to: string, bytes: number): Record<string, unknown> => ({ to, payload: { data: "x".repeat(bytes - 120) } });

describe.each(TRANSPORTS)("max_message_size = 1024, receiver over %s", (other) => {
  it("a raw /ws frame over the limit closes that connection with 1009; the other peer is unaffected", async () => {
    const ns = `size-ws-${other}`;
    const big = await peer("ws", ns);
    const bystander = await peer(other, ns);
    const text = JSON.stringify({ type: "relay", ...relayOfSize(bystander.fingerprint, 2 * MAX_MESSAGE_SIZE) });
    expect(Buffer.byteLength(text)).toBeGreaterThan(MAX_MESSAGE_SIZE);
    big.send("relay", relayOfSize(bystander.fingerprint, 2 * MAX_MESSAGE_SIZE));

    // Up to twice the limit the frame is read, so the peer is told why before the close.
    expect((await big.next("error")).payload).toMatchObject({ code: 400, close_code: 1009 });
    expect((await big.closed).code).toBe(1009);
    expect(await bystander.next("peer_left")).toMatchObject({ from: big.fingerprint, namespace: ns });
    expect(await bystander.nothing("relay", 100)).toBe(true);
    expect((await bystander.request("ping", {}, ["pong"])).type).toBe("pong");
  });

  it("a Socket.IO event over the limit disconnects only that client", async () => {
    const ns = `size-sio-${other}`;
    const big = await peer("sio", ns);
    const bystander = await peer(other, ns);
    big.send("relay", relayOfSize(bystander.fingerprint, 2 * MAX_MESSAGE_SIZE));

    // Up to twice the limit the packet is read, so the client is told why before the disconnect.
    expect((await big.next("error")).payload).toMatchObject({ code: 400, close_code: 1009 });
    expect((await big.closed).code).toBe("io server disconnect");
    expect(await bystander.next("peer_left")).toMatchObject({ from: big.fingerprint, namespace: ns });
    expect(await bystander.nothing("relay", 100)).toBe(true);
    expect((await bystander.request("ping", {}, ["pong"])).type).toBe("pong");
  });

  it.each(TRANSPORTS)("a message under the limit from %s is delivered", async (sender) => {
    const ns = `size-ok-${sender}-${other}`;
    const from = await peer(sender, ns);
    const to = await peer(other, ns);
    const fields = relayOfSize(to.fingerprint, MAX_MESSAGE_SIZE - 100);
    from.send("relay", fields);
    const relayed = await to.next("relay");
    expect(relayed).toMatchObject({ from: from.fingerprint, payload: fields["payload"] });
    expect((await from.request("ping", {}, ["pong"])).type).toBe("pong");
  });
});

describe("max_message_size on a connection that has not registered", () => {
  it("an oversize first frame on /ws closes with 1009", async () => {
    const raw = fixture.track(await connectWs(fixture.server.ws));
    raw.sendRaw("x".repeat(MAX_MESSAGE_SIZE + 1));
    expect((await raw.next("error")).payload).toMatchObject({ code: 400, close_code: 1009 });
    expect((await raw.closed).code).toBe(1009);
  });

  it("a /ws frame over twice the limit is cut unread: 1009 without a notice", async () => {
    const raw = fixture.track(await connectWs(fixture.server.ws));
    raw.sendRaw("x".repeat(2 * MAX_MESSAGE_SIZE + 1));
    expect((await raw.closed).code).toBe(1009);
    expect(raw.received.filter((message) => message.type === "error")).toEqual([]);
  });
});
