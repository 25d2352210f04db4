import { LimitsHost, type LimitsLink } from "../../src/backends/cluster/limits-host.ts";
import { workerToPrimaryGuard } from "../../src/protocol/cluster-messages.ts";
import type { LimitsHostCommand, LimitsHostReply } from "./limits-host.ts";

/**
 * A LimitsHost in its own process, as the cluster primary keeps it, for tests of ClusterLimits:
 * the parent plays any number of workers over this one IPC channel, each message tagged with its
 * link id. Run with `fork(..., { execArgv: ["--import", "tsx"], serialization: "advanced" })`.
 */
const host = new LimitsHost();
const links = new Map<string, LimitsLink>();
// Checked as the primary checks what a worker sends: the contract suite runs the guard on real traffic.
const fromWorker = workerToPrimaryGuard((ps, problem) => console.error(`a worker sent a malformed ${String(ps)}: ${problem}`));

function linkFor(id: string): LimitsLink {
  let link = links.get(id);
  if (link === undefined) {
    link = { send: (message) => process.send?.({ link: id, message } satisfies LimitsHostReply) };
    links.set(id, link);
  }
  return link;
}

process.on("message", (raw: unknown) => {
  const { link, message } = raw as LimitsHostCommand;
  const checked: unknown = message;
  if (!fromWorker(checked)) return;
  switch (checked.ps) {
    case "limits-register":
    case "limits-save":
    case "limits-take":
    case "limits-batch":
      host.receive(linkFor(link), checked);
      break;
    default:
      console.error(`a worker sent ${checked.ps}, which is not for the limits`);
  }
});
// Stay alive while the parent is connected; leave with it.
process.on("disconnect", () => process.exit(0));
process.send?.({ up: true });
