import { describe, expect, it } from "vitest";
import { TRANSPORTS, type TestPeer, type Transport } from "../helpers/peers.ts";
import { getJson } from "../helpers/server-process.ts";
import { useServer } from "../helpers/use-server.ts";
import { waitFor } from "../helpers/wait.ts";

const MAX_PEERS = 3;
// A closed peer departs at once here (resume_grace 0): resume has its own tests (resume.test.ts).
const fixture = useServer({
  config: { max_peers: MAX_PEERS, resume_grace: 0 },
  // The server has processed every close: the next test starts with free slots.
  afterPeersClosed: async () => {
    await waitFor(connections, counted(0), { timeoutMs: 5_000, what: "/stats to count no connection" });
  },
});

/** Open connections per transport, as /stats counts them. */
const connections = async (): Promise<Record<string, number>> => (await getJson(`${fixture.server.http}/stats`)).body["connections"] as Record<string, number>;
const total = (byTransport: Record<string, number>): number => Object.values(byTransport).reduce((sum, n) => sum + n, 0);
const counted =
  (count: number) =>
  (byTransport: Record<string, number>): boolean =>
    total(byTransport) === count;

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
    await waitFor(connections, counted(MAX_PEERS), { timeoutMs: 5_000, what: `/stats to count ${MAX_PEERS} connections` });
    await expectRefused(transport);
  });

  it("is admitted once a peer has left, and the others see the newcomer join", async () => {
    const ns = `full-${transport}-b`;
    const [first, second] = await fill(ns, ["sio", "ws", "ws"]);
    await expectRefused(transport === "ws" ? "sio" : "ws");
    await waitFor(connections, counted(MAX_PEERS), { timeoutMs: 5_000, what: `/stats to count ${MAX_PEERS} connections` });

    first?.close();
    await second?.next("peer_left");
    await waitFor(connections, counted(MAX_PEERS - 1), { timeoutMs: 5_000, what: `/stats to count ${MAX_PEERS - 1} connections` });

    const newcomer = await fixture.peer(transport, { namespace: ns });
    const joined = await second?.next((m) => m.type === "peer_joined" && m.from === newcomer.fingerprint);
    expect(joined?.namespace).toBe(ns);
    expect((await newcomer.request("ping", {}, ["pong"])).type).toBe("pong");
  });
});
