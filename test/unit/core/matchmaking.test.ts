import { describe, expect, it } from "vitest";
import { CoreHarness, errorCode } from "../../helpers/core-harness.ts";

const match = (namespace: string, groupSize: number, criteria: Record<string, unknown> = {}) => ({ payload: { namespace, group_size: groupSize, criteria } });

describe("match", () => {
  it("the first request waits; the one that completes the group gets matched, and so does every other member", async () => {
    const core = new CoreHarness();
    const a = await core.peer("key-a", "lobby");
    const b = await core.peer("key-b", "lobby");
    expect(await core.request(a, "match", match("lobby", 2, { mode: "ranked" }))).toEqual({
      type: "match",
      body: { payload: { status: "waiting", namespace: "lobby" } },
    });
    const matched = await core.request(b, "match", match("lobby", 2, { mode: "ranked" }));
    expect(matched.type).toBe("matched");
    const payload = matched.body["payload"] as { session_id: string; peers: { fingerprint: string }[] };
    expect(payload.session_id).toMatch(/^[0-9a-f]{32}$/);
    // Oldest ticket first.
    expect(payload.peers.map((peer) => peer.fingerprint)).toEqual([a.fingerprint, b.fingerprint]);
    expect(matched.body).toMatchObject({ namespace: "lobby", ts: core.clock.now });
    expect(a.connection.of("matched")).toEqual([matched]);
    expect(core.delivery.of("matched").map((emit) => emit.rooms)).toEqual([[`fp:${a.fingerprint}`]]);
  });

  it("groups only equal criteria (1 and \"1\" differ) and equal group sizes", async () => {
    const core = new CoreHarness();
    const peers = [await core.peer("key-a", "lobby"), await core.peer("key-b", "lobby"), await core.peer("key-c", "lobby")];
    const statuses = [
      await core.request(peers[0]!, "match", match("lobby", 2, { level: 1 })),
      await core.request(peers[1]!, "match", match("lobby", 2, { level: "1" })),
      await core.request(peers[2]!, "match", match("lobby", 3, { level: 1 })),
    ].map((reply) => reply.type);
    expect(statuses).toEqual(["match", "match", "match"]);
    expect(core.delivery.of("matched")).toEqual([]);
  });

  it("forms groups of more than two once the last one arrives", async () => {
    const core = new CoreHarness();
    const peers = [await core.peer("key-a", "lobby"), await core.peer("key-b", "lobby"), await core.peer("key-c", "lobby")];
    for (const peer of peers.slice(0, 2)) expect((await core.request(peer, "match", match("lobby", 3))).type).toBe("match");
    expect((await core.request(peers[2]!, "match", match("lobby", 3))).type).toBe("matched");
    expect(peers.map((peer) => peer.connection.of("matched").length)).toEqual([1, 1, 1]);
  });

  it("match_cancel drops the ticket (then 404); a non-member cannot match (403)", async () => {
    const core = new CoreHarness();
    const a = await core.peer("key-a", "lobby");
    const b = await core.peer("key-b", "lobby");
    await core.request(a, "match", match("lobby", 2));
    expect(await core.request(a, "match_cancel", { payload: { namespace: "lobby" } })).toEqual({
      type: "match",
      body: { payload: { status: "cancelled", namespace: "lobby" } },
    });
    expect(errorCode(await core.request(a, "match_cancel", { payload: { namespace: "lobby" } }))).toBe(404);
    expect((await core.request(b, "match", match("lobby", 2))).type).toBe("match");
    const outsider = await core.peer("key-c");
    expect(errorCode(await core.request(outsider, "match", match("lobby", 2)))).toBe(403);
  });
});
