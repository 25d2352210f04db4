import { describe, expect, it } from "vitest";
import { ClusterLimits } from "../../src/backends/cluster/cluster-limits.ts";
import { ReplicatedStore } from "../../src/backends/cluster/replicated-store.ts";

/** Long enough that a test finishing proves nothing waited for it. */
const CALL_TIMEOUT_MS = 60_000;

/** Lets coalesced sends (one per event-loop turn) go out. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const peer = (fingerprint: string) => ({ fingerprint, connectionId: `c-${fingerprint}`, nodeId: "w0", alias: undefined, aliasCandidates: [`alias-${fingerprint}`], meta: {}, verified: false });

describe("a worker whose primary stops the whole machine", () => {
  it("the replicated store changes its own replica at once and sends nothing", async () => {
    const sent: unknown[] = [];
    const store = new ReplicatedStore({ send: (message) => sent.push(message) }, { callTimeoutMs: CALL_TIMEOUT_MS });
    store.machineStopping();

    const registration = await store.registerPeer(peer("a"));
    expect(registration.alias).toBe("alias-a");
    await store.registerPeer(peer("b"));
    const join = { appType: "", meta: undefined, listLimit: 10 };
    expect((await store.joinNamespace("lobby", "a", join)).added).toBe(true);
    expect((await store.joinNamespace("lobby", "b", join)).peers.map((member) => member.fingerprint).sort()).toEqual(["a", "b"]);
    const departure = await store.unregisterPeer("a", "c-a");
    expect(departure?.scopes).toEqual(["lobby"]);

    expect(await store.resolvePeer("a")).toBeUndefined();
    expect(await store.isMember("lobby", "b")).toBe(true);
    await nextTurn();
    expect(sent).toEqual([]);
    await store.close();
  });

  it("the limits client keeps no message budget and sends nothing for it", async () => {
    const sent: unknown[] = [];
    const limits = new ClusterLimits({ send: (message) => sent.push(message) }, { callTimeoutMs: CALL_TIMEOUT_MS });
    limits.machineStopping();
    await expect(limits.budgets.save("f", "c", 3, 1_000)).resolves.toBeUndefined();
    await nextTurn();
    expect(sent).toEqual([]);
    await limits.close();
  });
});
