import { describe, expect, it } from "vitest";
import { ClusterLimits } from "../../src/backends/cluster/cluster-limits.ts";
import { ReplicatedStore } from "../../src/backends/cluster/replicated-store.ts";
import { ErrorCode, ProtocolError } from "../../src/protocol/errors.ts";

/** Long enough that a test finishing proves nothing waited for it. */
const CALL_TIMEOUT_MS = 60_000;

/** Lets coalesced sends (one per event-loop turn) go out. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** How a promise settles, without waiting past the current turns. */
async function settled<T>(promise: Promise<T>): Promise<"pending" | { value: T } | { error: unknown }> {
  const outcome = promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  return Promise.race([outcome, nextTurn().then(() => "pending" as const)]);
}

const peer = (fingerprint: string) => ({ fingerprint, connectionId: `c-${fingerprint}`, nodeId: "w0", alias: undefined, aliasCandidates: ["brave-fox-1"], meta: {}, verified: false });

describe("a worker's calls to a primary that is gone", () => {
  it("the replicated store fails waiting state changes at once with 503, later ones without sending them, and still reads its replica", async () => {
    let sent = 0;
    const store = new ReplicatedStore({ send: () => sent++ }, { callTimeoutMs: CALL_TIMEOUT_MS });
    const waiting = store.registerPeer(peer("a"));
    await nextTurn();
    expect(sent).toBe(1);
    expect(await settled(waiting)).toBe("pending");

    store.primaryGone();
    const failed = await settled(waiting);
    expect(failed).toHaveProperty("error");
    expect((failed as { error: ProtocolError }).error).toBeInstanceOf(ProtocolError);
    expect((failed as { error: ProtocolError }).error.code).toBe(ErrorCode.Unavailable);

    const later = await settled(store.unregisterPeer("a", "c-a"));
    expect((later as { error: ProtocolError }).error.code).toBe(ErrorCode.Unavailable);
    await nextTurn();
    expect(sent).toBe(1);
    expect(await store.resolvePeer("a")).toBeUndefined();
    await store.close();
  });

  it("the limits client fails waiting budget calls at once, later ones without sending them, and decides registrations itself", async () => {
    let sent = 0;
    const limits = new ClusterLimits({ send: () => sent++ }, { callTimeoutMs: CALL_TIMEOUT_MS });
    const save = limits.budgets.save("f", "c", 3, 1_000);
    const register = limits.registrations.consume("127.0.0.2", "key");
    await nextTurn();
    expect(sent).toBe(1);
    expect(await settled(save)).toBe("pending");

    limits.primaryGone();
    expect(await settled(save)).toHaveProperty("error");
    // Decided by the worker's own insurance limiter: the first registration of a key passes.
    expect(await settled(register)).toEqual({ value: undefined });
    expect(await settled(limits.budgets.take("f"))).toHaveProperty("error");
    expect(await settled(limits.registrations.consume("127.0.0.2", "other"))).toEqual({ value: undefined });
    await nextTurn();
    expect(sent).toBe(1);
    await limits.close();
  });
});
