import type { MutationArgs, MutationValue, StoreCall } from "../../protocol/cluster-messages.ts";
import type { StateStore } from "../state-store.ts";
import type { MemorySnapshot } from "../memory/memory-store.ts";
import { withFields } from "../../internals/object-copy.ts";

/**
 * Runs one mutation on a store: the primary's StoreHost applies each call this way, and every
 * replica replays each apply the same way, so all copies see the same method calls. The switch
 * is exhaustive: a mutation added to MUTATIONS does not compile until it has its case.
 */
export function applyMutation<C extends StoreCall>(store: StateStore, call: C): Promise<MutationValue[C["method"]]>;
export function applyMutation(store: StateStore, call: StoreCall): Promise<unknown> {
  switch (call.method) {
    case "registerPeer":
      return store.registerPeer(...call.args);
    case "unregisterPeer":
      return store.unregisterPeer(...call.args);
    case "updateMeta":
      return store.updateMeta(...call.args);
    case "joinNamespace":
      return store.joinNamespace(...call.args);
    case "leaveScope":
      return store.leaveScope(...call.args);
    case "createRoom":
      return store.createRoom(...call.args);
    case "joinRoom":
      return store.joinRoom(...call.args);
    case "kick":
      return store.kick(...call.args);
    case "requestMatch":
      return store.requestMatch(...call.args);
    case "cancelMatch":
      return store.cancelMatch(...call.args);
    case "removeNode":
      return store.removeNode(...call.args);
    case "addBan":
      return store.addBan(...call.args);
    case "removeBan":
      return store.removeBan(...call.args);
    case "suspendPeer":
      return store.suspendPeer(...call.args);
    case "resumePeer":
      return store.resumePeer(...call.args);
    case "bufferMessage":
      return store.bufferMessage(...call.args);
    case "expireSuspended":
      return store.expireSuspended(...call.args);
  }
}

/**
 * What a replica holds in place of a peer's resume hash: the primary keeps the hash and checks
 * every resume against it; a replica replays only the resumes that passed there, so it needs to
 * know whether a registration can be resumed, not the secret (64 characters less per peer in every
 * worker, and in every registration written to each of them). One character: V8 gives every
 * copy of a one-character string it parses the same object, so the replicas' peers share it.
 */
export const REPLICA_RESUME_HASH = "*";

/**
 * The arguments a mutation that ran on the primary is replayed with on every replica: its own, but
 * a registration names the alias it took instead of the candidates it was taken from (a replica
 * holds the state the primary held, where that alias was free, so it comes to the same peer), and
 * a registration or resume carries REPLICA_RESUME_HASH for its resume hash: "" when the primary
 * refused the resume, which the replica then refuses as well, without a change.
 */
export function replayArgs<C extends StoreCall>(call: C, value: MutationValue[C["method"]]): C["args"];
export function replayArgs(call: StoreCall, value: unknown): StoreCall["args"] {
  switch (call.method) {
    case "registerPeer": {
      const [request] = call.args;
      const taken = (value as MutationValue["registerPeer"]).alias;
      const replay = withFields(request, { alias: taken, aliasCandidates: [] });
      if (request.resumeHash !== undefined) replay.resumeHash = replicaResumeHash(request.resumeHash);
      return [replay] satisfies MutationArgs["registerPeer"];
    }
    case "resumePeer": {
      const [request] = call.args;
      const resumeHash = value === undefined ? "" : REPLICA_RESUME_HASH;
      return [withFields(request, { resumeHash })] satisfies MutationArgs["resumePeer"];
    }
    default:
      return call.args;
  }
}

/** A replica's copy of a resume hash the primary holds. */
export const replicaResumeHash = (resumeHash: string | undefined): string => (resumeHash === undefined || resumeHash === "" ? "" : REPLICA_RESUME_HASH);

/** The primary's snapshot as a replica is seeded with: the resume hashes replaced as replays replace them. */
export function replicaSnapshot(snapshot: MemorySnapshot): MemorySnapshot {
  return withFields(snapshot, { peers: snapshot.peers.map((peer) => withFields(peer, { resumeHash: replicaResumeHash(peer.resumeHash) })) });
}

/**
 * The call as a store runs it when nobody reads what it returns (the primary's own run of a
 * replica's call, another replica's replay): a join lists no members. The change is the same; the
 * member list (up to list_limit entries built for every join, on every copy) is made only by the
 * caller's replica, whose answer it is.
 */
export function withoutListing<C extends StoreCall>(call: C): C;
export function withoutListing(call: StoreCall): StoreCall {
  switch (call.method) {
    case "joinNamespace": {
      const [name, fingerprint, options] = call.args;
      return withFields(call, { args: [name, fingerprint, withFields(options, { listLimit: 0 })] satisfies MutationArgs["joinNamespace"] });
    }
    case "joinRoom": {
      const [roomId, fingerprint, , admission] = call.args;
      return withFields(call, { args: [roomId, fingerprint, 0, admission] satisfies MutationArgs["joinRoom"] });
    }
    default:
      return call;
  }
}
