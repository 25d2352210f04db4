import type { Snapshot } from "../core/proc.ts";
import type { Endpoint } from "../core/targets.ts";
import { connectClient, type ClientKind } from "./clients.ts";
import type { JobContext, JobRunner } from "./context.ts";
import { runBroadcast } from "./jobs/broadcast.ts";
import { runConnect } from "./jobs/connect.ts";
import { runCrowd } from "./jobs/crowd.ts";
import { runDialectPairing } from "./jobs/dialect-pairing.ts";
import { runDialectSignal } from "./jobs/dialect-signal.ts";
import { runHold } from "./jobs/hold.ts";
import { runMatch } from "./jobs/match.ts";
import { runSignal } from "./jobs/signal.ts";
import { runStress } from "./jobs/stress.ts";
import type { FromWorker, JobKind, JobParamsByKind, LoadJob, ProgressUpdate, ToWorker } from "./protocol.ts";

/**
 * The load process: all clients of one run live here, pinned to their own core, apart from the
 * target. It runs one job sent by the orchestrator over IPC, asks it for target readings at
 * checkpoints, streams progress, sends the result and exits.
 */
const RUNNERS: { readonly [K in JobKind]: JobRunner<JobParamsByKind[K]> } = {
  connect: runConnect,
  signal: runSignal,
  broadcast: runBroadcast,
  hold: runHold,
  match: runMatch,
  stress: runStress,
  crowd: runCrowd,
  "dialect-signal": runDialectSignal,
  "dialect-pairing": runDialectPairing,
};

const PROGRESS_INTERVAL_MS = 200;

function post(message: FromWorker): void {
  process.send?.(message);
}

/** Sends the last message and exits once it has been handed to the channel. */
function finish(message: FromWorker): void {
  process.send?.(message, undefined, {}, () => process.exit(0));
}

function createContext(endpoints: readonly Endpoint[], client: ClientKind): JobContext {
  const pending = new Map<number, (snapshot: Snapshot) => void>();
  let nextId = 0;
  let lastProgress = 0;
  let lastPhase = "";
  process.on("message", (message: ToWorker) => {
    if (message.type !== "snapshot") return;
    pending.get(message.id)?.(message.snapshot);
    pending.delete(message.id);
  });
  return {
    endpoints,
    client,
    endpoint: (index) => endpoints[index % endpoints.length] as Endpoint,
    connect: (transport, index, localAddress) => connectClient(client, transport, endpoints[index % endpoints.length] as Endpoint, localAddress),
    progress(update: ProgressUpdate) {
      const now = performance.now();
      if (update.phase === lastPhase && now - lastProgress < PROGRESS_INTERVAL_MS) return;
      lastPhase = update.phase;
      lastProgress = now;
      post({ type: "progress", update });
    },
    checkpoint(name) {
      const id = nextId++;
      return new Promise((resolve) => {
        pending.set(id, resolve);
        post({ type: "checkpoint", id, name });
      });
    },
  };
}

async function run(job: LoadJob, endpoints: readonly Endpoint[], client: ClientKind): Promise<void> {
  const runner = RUNNERS[job.kind] as JobRunner<typeof job.params>;
  const result = await runner(job.params, createContext(endpoints, client));
  finish({ type: "result", result });
}

if (process.send === undefined) {
  console.error("bench/load/worker.ts is started by the bench CLI (npm run bench), not directly");
  process.exit(2);
}
process.once("message", (message: ToWorker) => {
  if (message.type !== "run") return;
  run(message.job, message.endpoints, message.client).catch((error: unknown) => finish({ type: "failed", message: error instanceof Error ? error.message : String(error) }));
});
// The orchestrator going away ends the run.
process.on("disconnect", () => process.exit(0));
