import type { Envelope, TestPeer } from "./peers.ts";

export interface JoinRaceOutcome {
  /** Per peer: fingerprints announced by peer_joined that its own peer_list had already listed. */
  announcedTwice: string[][];
  /** Per peer: fingerprints announced by more than one peer_joined. */
  repeated: string[][];
  /** Per peer: other joiners it never learned of, from its list or a notice. */
  missing: string[][];
}

/**
 * Every peer joins one namespace (or, with `join`, a room) at the same moment (peers should sit
 * on different processes), then each must learn of every other exactly once: from its own
 * peer_list if the other joined first, otherwise from one peer_joined. Waits `settleMs` after the
 * last expected notice so late duplicates show up too.
 */
export async function joinAtOnce(
  peers: readonly TestPeer[],
  namespace: string,
  join: (peer: TestPeer) => Promise<Envelope> = (peer) => peer.join(namespace),
  settleMs = 500,
): Promise<JoinRaceOutcome> {
  const lists = await Promise.all(peers.map(join));
  const failed = lists.find((reply) => reply.type !== "peer_list");
  if (failed !== undefined) throw new Error(`a join failed: ${JSON.stringify(failed)}`);
  const isNotice = (message: Envelope): boolean => message.type === "peer_joined" && message.namespace === namespace;
  const listed = lists.map((reply) => new Set(((reply.payload?.["peers"] ?? []) as { fingerprint: string }[]).map((member) => member.fingerprint)));
  const notices: string[][] = peers.map(() => []);

  await Promise.all(
    peers.map(async (peer, index) => {
      const others = peers.filter((other) => other !== peer).map((other) => other.fingerprint);
      const known = new Set(listed[index]);
      const deadline = Date.now() + 5_000;
      while (others.some((fingerprint) => !known.has(fingerprint)) && Date.now() < deadline) {
        const notice = await peer.next(isNotice, Math.max(1, deadline - Date.now())).catch(() => undefined);
        if (notice === undefined) break;
        notices[index]?.push(String(notice.from));
        known.add(String(notice.from));
      }
    }),
  );
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  peers.forEach((peer, index) => {
    for (let late = peer.received.findIndex(isNotice); late >= 0; late = peer.received.findIndex(isNotice)) {
      notices[index]?.push(String(peer.received.splice(late, 1)[0]?.from));
    }
  });

  return {
    announcedTwice: peers.map((_, index) => (notices[index] ?? []).filter((fingerprint) => listed[index]?.has(fingerprint))),
    repeated: notices.map((list) => list.filter((fingerprint, at) => list.indexOf(fingerprint) !== at)),
    missing: peers.map((peer, index) =>
      peers.filter((other) => other !== peer && !listed[index]?.has(other.fingerprint) && !notices[index]?.includes(other.fingerprint)).map((other) => other.fingerprint),
    ),
  };
}
