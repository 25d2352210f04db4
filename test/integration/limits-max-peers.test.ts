import { describe, expect, it } from "vitest";
import { TRANSPORTS, type TestPeer, type Transport } from "../helpers/peers.ts";
import { getJson } from "../helpers/server-process.ts";
import { useServer } from "../helpers/use-server.ts";

const MAX_PEERS = 3;
const fixture = useServer({ config: { max_peers: MAX_PEERS }, afterPeersClosed: () => waitForConnections(0) });

/** Waits until the server has processed every close, so the next test starts with free slots. */
async function waitForConnections(count: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const { body } = await getJson(`${fixture.server.http}/stats`);
    const connections = body["connections"] as Record<string, number>;
    const total = Object.values(connections).reduce((sum, n) => sum + n, 0);
    if (total === count) return;
    if (Date.now() > deadline) throw new Error(`expected ${count} connections, stats: ${JSON.stringify(body)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function fill(namespace: string, transports: Transport[]): Promise<TestPeer[]> {
  const peers: TestPeer[] = [];
  for (const transport of transports) {
    peers.push(await fixture.peer(transport, { namespace }));
  }
  return peers;
}

/** Connects one more peer and expects the server-full refusal over its transport. */
async function expectRefused(transport: Transport): Promise<void> {
  const extra = await fixture.connect(transport);
  const refusal = await extra.next("error");
  expect(refusal.payload).toMatchObject({ code: 503, close_code: 1013 });
  const closed = await extra.closed;
  if (transport === "ws") expect(closed.code).toBe(1013);
  else expect(closed.code).toBe("io server disconnect");
}

describe.each(TRANSPORTS)("max_peers = 3, the next peer over %s", (transport) => {
  it("is refused with error 503 (close_code 1013) and disconnected", async () => {
    const members = await fill(`full-${transport}-a`, ["ws", "sio", transport]);
    await expectRefused(transport);
    // The peers already admitted are untouched.
    for (const member of members) expect((await member.request("ping", {}, ["pong"])).type).toBe("pong");
    const health = await getJson(`${fixture.server.http}/health`);
    expect(health.body).toMatchObject({ peers: MAX_PEERS, max_peers: MAX_PEERS });
  });

  it("is refused even before the others register: connections count, not registrations", async () => {
    for (let i = 0; i < MAX_PEERS; i++) await fixture.connect(i % 2 === 0 ? "ws" : "sio");
    await waitForConnections(MAX_PEERS);
    await expectRefused(transport);
  });

  it("is admitted once a peer has left, and the others see the newcomer join", async () => {
    const ns = `full-${transport}-b`;
    const [first, second] = await fill(ns, ["sio", "ws", "ws"]);
    await expectRefused(transport === "ws" ? "sio" : "ws");
    await waitForConnections(MAX_PEERS);

    first?.close();
    await second?.next("peer_left");
    await waitForConnections(MAX_PEERS - 1);

    const newcomer = await fixture.peer(transport, { namespace: ns });
    const joined = await second?.next((m) => m.type === "peer_joined" && m.from === newcomer.fingerprint);
    expect(joined?.namespace).toBe(ns);
    expect((await newcomer.request("ping", {}, ["pong"])).type).toBe("pong");
  });
});
