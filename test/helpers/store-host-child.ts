import { workerToPrimaryGuard } from "../../src/protocol/cluster-messages.ts";
import { StoreHost, type ReplicaLink } from "../../src/backends/cluster/store-host.ts";
import type { HostCommand, HostReply } from "./store-host.ts";

/**
 * A StoreHost in its own process, for tests of ReplicatedStore: the parent (the test process)
 * plays any number of workers over this one IPC channel, each message tagged with its link id.
 * Run with `fork(..., { execArgv: ["--import", "tsx"], serialization: "advanced" })`.
 */
const host = new StoreHost();
const links = new Map<string, ReplicaLink>();
// Checked as the primary checks what a worker sends: the contract suite runs the guard on real traffic.
const fromReplica = workerToPrimaryGuard((ps, problem) => console.error(`a replica sent a malformed ${String(ps)}: ${problem}`));

const reply = (message: HostReply): void => {
  process.send?.(message);
};

function linkFor(id: string): ReplicaLink {
  let link = links.get(id);
  if (link === undefined) {
    link = { send: (message) => reply({ link: id, message }) };
    links.set(id, link);
  }
  return link;
}

process.on("message", (raw: unknown) => {
  const command = raw as HostCommand;
  switch (command.kind) {
    case "message": {
      const message: unknown = command.message;
      if (!fromReplica(message)) break;
      if (message.ps === "hello" || message.ps === "call" || message.ps === "batch") host.receive(linkFor(command.link), message);
      else console.error(`a replica sent ${message.ps}, which is not for the store`);
      break;
    }
    case "detach": {
      const link = links.get(command.link);
      if (link !== undefined) host.detach(link);
      links.delete(command.link);
      break;
    }
    case "removeNode":
      // What the cluster primary does when a worker exits.
      void host.removeNode(command.nodeId).then(
        (departures) => reply({ kind: "removed", id: command.id, departures }),
        (error: unknown) => reply({ kind: "removed", id: command.id, error: String(error) }),
      );
      break;
  }
});
// Stay alive while the parent is connected; leave with it.
process.on("disconnect", () => process.exit(0));
reply({ kind: "up" });
