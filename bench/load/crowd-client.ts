import { join, register, type BenchClient } from "./clients.ts";
import { sleep } from "./context.ts";
import type { CrowdShardSummary, FromCrowdClient, ToCrowdClient, Transport } from "./protocol.ts";
import { connectWire, incomingPrefix } from "./wire.ts";

/**
 * One load process of the crowd job (bench/load/jobs/crowd.ts starts several: a process may hold
 * at most `ulimit -n` sockets). It sets up the peers of its index range (connect, register, join a
 * namespace) with bounded concurrency, counts the `peer_joined` announcements they get, holds
 * every connection until told to close, and on request times pings and signals between two of
 * them at full load.
 */

const CONNECT_TIMEOUT_MS = 30_000;
/**
 * Each peer's local port, below the kernel's ephemeral range (32768 up): 20,000 plus its index
 * divided by the number of source addresses, so that (address, port) is the peer's own. Bound with
 * port 0, every connect had the kernel search the address's ports for a free one, and with tens of
 * thousands held per address that search (under `bind`) cost the load processes more CPU than the
 * server spent; a given port is one lookup. A port taken by something else falls back to the
 * kernel's choice.
 */
const LOCAL_PORT_BASE = 20_000;
const LOCAL_PORT_END = 32_768;
const PROGRESS_MS = 250;
const CHECK_TIMEOUT_MS = 10_000;

const post = (message: FromCrowdClient): void => {
  process.send?.(message);
};

const clients = new Map<number, BenchClient>();

async function open(start: Extract<ToCrowdClient, { type: "start" }>): Promise<CrowdShardSummary> {
  const { params, endpoint, from, to } = start;
  const reasons: Record<string, number> = {};
  let completed = 0;
  let failed = 0;
  let joinedSeen = 0;
  const prefixes: Record<Transport, string> = { ws: incomingPrefix("ws", "peer_joined"), sio: incomingPrefix("sio", "peer_joined") };
  const transportOf = (index: number): Transport => (params.sioEvery > 0 && index % params.sioEvery === params.sioEvery - 1 ? "sio" : "ws");
  const namespaceOf = (index: number): string => `crowd-${start.runId}-${Math.floor(index / params.namespaceSize)}`;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const deadline = t0 + params.maxMs;
  let lastDoneAt = t0;

  const setUp = async (index: number): Promise<void> => {
    const transport = transportOf(index);
    let client: BenchClient | undefined;
    let step = "connect";
    try {
      const address = `127.0.0.${1 + (index % params.sourceAddresses)}`;
      const port = LOCAL_PORT_BASE + Math.floor(index / params.sourceAddresses);
      client = await connectWire(transport, endpoint, address, CONNECT_TIMEOUT_MS, undefined, undefined, port < LOCAL_PORT_END ? port : 0).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") throw error;
        return connectWire(transport, endpoint, address, CONNECT_TIMEOUT_MS);
      });
      const prefix = prefixes[transport];
      client.onText = (text) => {
        if (!text.startsWith(prefix)) return false;
        joinedSeen++;
        return true;
      };
      step = "register";
      await register(client, `crowd-${start.runId}-${index}`);
      step = "join";
      await join(client, namespaceOf(index));
      clients.set(index, client);
      completed++;
      lastDoneAt = performance.now();
    } catch (error) {
      failed++;
      const text = `${transport} at ${step}: ${(error as Error).message}`.slice(0, 200);
      reasons[text] = (reasons[text] ?? 0) + 1;
      client?.close();
    }
  };

  let next = from;
  const lane = async (): Promise<void> => {
    while (next < to) {
      const index = next++;
      if (performance.now() > deadline) {
        failed++;
        const text = `not attempted: the set-up phase passed its bound of ${params.maxMs / 1000} s`;
        reasons[text] = (reasons[text] ?? 0) + 1;
        continue;
      }
      await setUp(index);
    }
  };
  const progressTimer = setInterval(() => post({ type: "progress", done: completed, failed }), PROGRESS_MS);
  try {
    await Promise.all(Array.from({ length: Math.min(params.concurrency, to - from) }, lane));
  } finally {
    clearInterval(progressTimer);
  }
  post({ type: "progress", done: completed, failed });
  const setupMs = lastDoneAt - t0;

  // Every join is announced to the namespace's earlier members: m members -> m(m-1)/2 announcements.
  // The range starts on a namespace boundary, so every namespace it holds is whole (the last one may be short).
  let joinedExpected = 0;
  for (let first = from; first < to; first += params.namespaceSize) {
    let members = 0;
    for (let index = first; index < Math.min(to, first + params.namespaceSize); index++) if (clients.has(index)) members++;
    joinedExpected += (members * (members - 1)) / 2;
  }
  const settleUntil = performance.now() + 60_000;
  // Until every pair has been announced (more may come: concurrent joins on different workers can be announced both ways), bounded.
  while (joinedSeen < joinedExpected && performance.now() < settleUntil) await sleep(100);
  const cpu = process.cpuUsage(cpu0);
  const firstNamespace: { index: number; fingerprint: string; transport: Transport }[] = [];
  for (let index = from; index < Math.min(to, from + params.namespaceSize); index++) {
    const client = clients.get(index);
    if (client !== undefined) firstNamespace.push({ index, fingerprint: client.fingerprint, transport: client.transport });
  }
  return { completed, failed, reasons, joinedSeen, joinedExpected, setupMs, cpuMs: (cpu.user + cpu.system) / 1000, rssKb: Math.round(process.memoryUsage.rss() / 1024), firstNamespace };
}

/** Times `count` pings from a (request -> pong) and `count` signals a -> b (send -> b receives it), one at a time. */
async function check(a: number, b: number, count: number): Promise<Extract<FromCrowdClient, { type: "checked" }>> {
  const pingMs: number[] = [];
  const signalMs: number[] = [];
  const errors: string[] = [];
  const from = clients.get(a);
  const target = clients.get(b);
  if (from === undefined || target === undefined) return { type: "checked", pingMs, signalMs, errors: [`peer ${from === undefined ? a : b} is not held by this load process`] };
  if (from.isClosed || target.isClosed) errors.push(`a checked peer was closed before the check: ${from.closeReason ?? target.closeReason ?? "?"}`);
  const signalPrefix = incomingPrefix(target.transport, "signal");
  for (let round = 0; round < count && errors.length === 0; round++) {
    const t0 = performance.now();
    try {
      const reply = await from.request("ping", {}, ["pong"], CHECK_TIMEOUT_MS);
      if (reply.type !== "pong") throw new Error(`ping answered ${JSON.stringify(reply).slice(0, 200)}`);
      pingMs.push(performance.now() - t0);
    } catch (error) {
      errors.push(`ping ${round}: ${(error as Error).message}`);
      break;
    }
    const t1 = performance.now();
    const marker = `check-${round}-${Math.random().toString(36).slice(2)}`;
    const received = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`signal not delivered within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
      const previous = target.onText;
      target.onText = (text) => {
        if (text.startsWith(signalPrefix) && text.includes(marker)) {
          clearTimeout(timer);
          target.onText = previous;
          if (!text.includes(from.fingerprint)) reject(new Error(`signal arrived without the sender's fingerprint: ${text.slice(0, 200)}`));
          else resolve();
          return true;
        }
        return previous?.(text) ?? false;
      };
    });
    from.send("signal", { to: target.fingerprint, payload: { kind: "offer", marker, sdp: "v=0 ".repeat(350) } });
    try {
      await received;
      signalMs.push(performance.now() - t1);
    } catch (error) {
      errors.push(`signal ${round}: ${(error as Error).message}`);
    }
  }
  return { type: "checked", pingMs, signalMs, errors };
}

if (process.send === undefined) {
  console.error("bench/load/crowd-client.ts is started by the crowd job, not directly");
  process.exit(2);
}
process.on("message", (message: ToCrowdClient) => {
  if (message.type === "start") {
    open(message).then(
      (summary) => post({ type: "opened", summary }),
      (error: unknown) => {
        console.error(error instanceof Error ? error.stack : error);
        process.exit(1);
      },
    );
  } else if (message.type === "check") {
    void check(message.a, message.b, message.count).then(post);
  } else {
    // No graceful closes: the kernel closes every socket at once when this process exits.
    process.exit(0);
  }
});
// The job (our parent) going away ends this process.
process.on("disconnect", () => process.exit(0));
post({ type: "ready" });
