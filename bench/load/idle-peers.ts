import { forEachBounded, join, register, type BenchClient, type Envelope } from "./clients.ts";
import type { JobContext } from "./context.ts";
import type { IdlePeers, Transport } from "./protocol.ts";

/**
 * Connects the run's idle peers (see IdlePeers): each registers and joins a namespace of two of
 * its own, so the node holding it keeps peers and namespaces that no message of the run is for.
 * Clients go into `into` as they connect, so that the caller closes them even when set-up fails;
 * `onMessage` sees what reaches them (an error reply is the only thing that should). Endpoints the
 * target does not have are skipped: the same job runs against targets of different sizes.
 */
export async function connectIdlePeers(
  context: JobContext,
  transport: Transport,
  idle: IdlePeers | undefined,
  runId: string,
  into: BenchClient[],
  onMessage: (type: string, body: Envelope) => void,
): Promise<void> {
  const endpoints = (idle?.endpoints ?? []).filter((endpoint) => endpoint < context.endpoints.length);
  const total = endpoints.length * (idle?.perEndpoint ?? 0);
  if (total === 0) return;
  await forEachBounded(
    total,
    50,
    performance.now() + 60_000,
    async (index) => {
      const client = await context.connect(transport, endpoints[index % endpoints.length] as number);
      into[index] = client;
      client.onMessage = onMessage;
      await register(client, `bench-${runId}-idle-${index}`);
      await join(client, `idle-${runId}-${index >> 1}`);
    },
    (done) => context.progress({ phase: "connecting idle peers", done, total }),
  );
}
