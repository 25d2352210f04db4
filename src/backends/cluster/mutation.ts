import type { MutationArgs, MutationValue, StoreCall } from "../../protocol/cluster-messages.ts";
import type { StateStore } from "../state-store.ts";
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
 * The arguments a mutation that ran on the primary is replayed with on every replica: its own, but
 * a registration names the alias it took instead of the candidates it was taken from. A replica
 * holds the state the primary held, where that alias was free, so it comes to the same peer;
 * the message every replica reads and the primary writes once per replica is smaller by the list
 * (ten generated aliases).
 */
export function replayArgs<C extends StoreCall>(call: C, value: MutationValue[C["method"]]): C["args"];
export function replayArgs(call: StoreCall, value: unknown): StoreCall["args"] {
  if (call.method !== "registerPeer") return call.args;
  const [request] = call.args;
  const taken = (value as MutationValue["registerPeer"]).alias;
  return [withFields(request, { alias: taken, aliasCandidates: [] })] satisfies MutationArgs["registerPeer"];
}
