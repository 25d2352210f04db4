import { randomUUID } from "node:crypto";
import type { Envelope, TestPeer } from "./peers.ts";

export interface JoinRaceOutcome {
  /** Per peer: fingerprints announced by peer_joined that its own peer_list had already listed. */
  announcedTwice: string[][];
  /** Per peer: fingerprints announced by more than one peer_joined. */
  repeated: string[][];
  /** Per peer: other joiners it never learned of, from its list or a notice. */
  missing: string[][];
}

/** How long each peer may take to hear every other's barrier marker. */
const BARRIER_TIMEOUT_MS = 5_000;

/**
 * Every peer joins one namespace (or, with `join`, a room) at the same moment (peers should sit
 * on different processes), then each must learn of every other exactly once: from its own
 * peer_list if the other joined first, otherwise from one peer_joined.
 *
 * Once every join is answered, each peer broadcasts a marker to the scope, and each waits for the
 * marker of every other. Messages with the same origin reach each receiver in the order they were
 * sent (Delivery's contract, delivery/delivery.ts), and a joiner's peer_joined goes out before its
 * join is answered; so a peer that holds every other's marker holds every peer_joined those joins
 * caused, late duplicates included.
 */
export async function joinAtOnce(
  peers: readonly TestPeer[],
  namespace: string,
  join: (peer: TestPeer) => Promise<Envelope> = (peer) => peer.join(namespace),
): Promise<JoinRaceOutcome> {
  const lists = await Promise.all(peers.map(join));
  const failed = lists.find((reply) => reply.type !== "peer_list");
  if (failed !== undefined) throw new Error(`a join failed: ${JSON.stringify(failed)}`);
  const isNotice = (message: Envelope): boolean => message.type === "peer_joined" && message.namespace === namespace;
  const listed = lists.map((reply) => new Set(((reply.payload?.["peers"] ?? []) as { fingerprint: string }[]).map((member) => member.fingerprint)));

  const marker = `join-race-barrier-${randomUUID()}`;
  const isMarkerFrom =
    (fingerprint: string) =>
    (message: Envelope): boolean =>
      message.type === "broadcast" && message.from === fingerprint && message.payload?.["data"] === marker;
  for (const peer of peers) peer.send("broadcast", { payload: { namespace, data: marker } });
  await Promise.all(
    peers.flatMap((peer) => peers.filter((other) => other !== peer).map((other) => peer.next(isMarkerFrom(other.fingerprint), BARRIER_TIMEOUT_MS))),
  );

  const notices = peers.map((peer) => {
    const heard: string[] = [];
    for (let at = peer.received.findIndex(isNotice); at >= 0; at = peer.received.findIndex(isNotice)) {
      heard.push(String(peer.received.splice(at, 1)[0]?.from));
    }
    return heard;
  });

  return {
    announcedTwice: peers.map((_, index) => (notices[index] ?? []).filter((fingerprint) => listed[index]?.has(fingerprint))),
    repeated: notices.map((list) => list.filter((fingerprint, at) => list.indexOf(fingerprint) !== at)),
    missing: peers.map((peer, index) =>
      peers.filter((other) => other !== peer && !listed[index]?.has(other.fingerprint) && !notices[index]?.includes(other.fingerprint)).map((other) => other.fingerprint),
    ),
  };
}
