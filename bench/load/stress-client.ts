import { io, type Socket } from "socket.io-client";
import { connectClient, register, type BenchClient, type ClientKind } from "./clients.ts";
import { sleep } from "./context.ts";
import type { FromStressClient, HungConnection, StressCounts, StressShardSummary, StressTransport, ToStressClient } from "./protocol.ts";
import { connectWire } from "./wire.ts";

/**
 * One load process of the stress job (bench/load/jobs/stress.ts starts several: each process may
 * hold at most `ulimit -n` sockets). It opens its share of the connections (index % shards ===
 * shard) with bounded concurrency, gives each a deadline for connect + register (+ upgrade), keeps
 * every connection open until told to close, and reports what happened to each.
 */

/** Longer than any deadline: a client library must not turn a hang into an error of its own before our deadline. */
const CLIENT_TIMEOUT_MS = 60_000;
const PROGRESS_MS = 250;
const CLOSE_WAIT_MS = 10_000;

interface Attempt {
  readonly index: number;
  readonly transport: StressTransport;
  readonly began: number;
  step: string;
  readonly details: string[];
  state: "pending" | "done" | "failed" | "hung";
  opened: boolean;
  registered: boolean;
  close: () => void;
  closed: Promise<void>;
  hung?: HungConnection;
  /** Called once when the attempt leaves "pending" (done or failed). */
  onSettled: () => void;
}

const post = (message: FromStressClient): void => {
  process.send?.(message);
};

const emptyCounts = (): StressCounts => ({ attempted: 0, opened: 0, registered: 0, completed: 0, failed: 0, hung: 0, lateCompleted: 0, lateFailed: 0, dropped: 0 });

async function run(start: Extract<ToStressClient, { type: "start" }>): Promise<void> {
  const { params, endpoint, shard, shards } = start;
  const counts: Record<StressTransport, StressCounts> = { ws: emptyCounts(), sio: emptyCounts(), polling: emptyCounts() };
  const reasons: Record<string, number> = {};
  const hung: HungConnection[] = [];
  const latencies: number[] = [];
  const attempts: Attempt[] = [];
  const reason = (text: string): void => {
    reasons[text] = (reasons[text] ?? 0) + 1;
  };
  let closing = false;
  let settled = 0;
  let lastSettledAt = 0;

  const indexes: number[] = [];
  for (let index = shard; index < params.connections; index += shards) indexes.push(index);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const openDeadline = t0 + params.maxMs;

  /** Ends an attempt: done, or failed with a reason; reports late outcomes of hung ones and drops after completion. */
  const finish = (attempt: Attempt, error: string | undefined): void => {
    const c = counts[attempt.transport];
    const elapsed = performance.now() - attempt.began;
    if (attempt.state === "pending") {
      settled++;
      lastSettledAt = performance.now();
      if (error === undefined) {
        attempt.state = "done";
        c.completed++;
        latencies.push(elapsed);
      } else {
        attempt.state = "failed";
        c.failed++;
        reason(`${attempt.transport} at ${attempt.step}: ${error}`);
      }
      attempt.onSettled();
    } else if (attempt.state === "hung" && attempt.hung !== undefined && attempt.hung.outcome === "still pending" && !closing) {
      if (error === undefined) {
        c.lateCompleted++;
        attempt.hung.outcome = `completed late, after ${(elapsed / 1000).toFixed(1)} s`;
      } else {
        c.lateFailed++;
        attempt.hung.outcome = `failed after ${(elapsed / 1000).toFixed(1)} s: ${error}`;
        reason(`${attempt.transport} (late) at ${attempt.step}: ${error}`);
      }
    } else if (attempt.state === "done" && error !== undefined && !closing) {
      c.dropped++;
      reason(`${attempt.transport} closed by the server after completing: ${error}`);
    }
  };

  const localAddress = (index: number): string | undefined => (params.sourceAddresses > 0 ? `127.0.0.${2 + (index % params.sourceAddresses)}` : undefined);

  /** /ws or WebSocket-only Socket.IO: wire clients report each step; library clients only connect, then register. */
  const openWebSocket = (attempt: Attempt, transport: "ws" | "sio", kind: ClientKind): void => {
    let client: BenchClient | undefined;
    let closed: () => void = () => undefined;
    attempt.closed = new Promise((resolve) => (closed = resolve));
    attempt.close = () => {
      if (client === undefined) closed();
      else client.close();
    };
    const onStep = (step: string, detail?: string): void => {
      attempt.step = step;
      if (detail !== undefined) attempt.details.push(detail);
    };
    const connecting =
      kind === "wire"
        ? connectWire(transport, endpoint, localAddress(attempt.index), CLIENT_TIMEOUT_MS, onStep)
        : connectClient("library", transport, endpoint, localAddress(attempt.index), CLIENT_TIMEOUT_MS);
    connecting.then(
      async (connected) => {
        client = connected;
        attempt.opened = true;
        if (attempt.state === "pending") counts[transport].opened++;
        void connected.closed.then((why) => {
          finish(attempt, why);
          closed();
        });
        if (closing) connected.close();
        attempt.step = "register (waiting for registered)";
        try {
          await register(connected, `stress-${start.runId}-${attempt.index}`);
        } catch (error) {
          finish(attempt, (error as Error).message);
          return;
        }
        attempt.registered = true;
        if (attempt.state === "pending") counts[transport].registered++;
        finish(attempt, undefined);
      },
      (error: unknown) => {
        finish(attempt, (error as Error).message);
        closed();
      },
    );
  };

  /** socket.io-client, polling first: Engine.IO handshake over HTTP, namespace connect, register, and the upgrade to WebSocket. */
  const openPolling = (attempt: Attempt): void => {
    const socket: Socket = io(`http://${endpoint.host}:${endpoint.port}`, {
      path: "/socket.io/",
      transports: ["polling", "websocket"],
      upgrade: true,
      forceNew: true,
      reconnection: false,
      timeout: CLIENT_TIMEOUT_MS,
    });
    let closed: () => void = () => undefined;
    attempt.closed = new Promise((resolve) => (closed = resolve));
    attempt.close = () => {
      socket.disconnect();
      closed();
    };
    let upgraded = false;
    let upgradeStep = "upgrade (not started)";
    const progress = (): void => {
      const waiting = [attempt.registered ? undefined : "register (waiting for the ack)", upgraded ? undefined : upgradeStep].filter((part) => part !== undefined);
      attempt.step = waiting.join(" + ");
      if (attempt.registered && upgraded) finish(attempt, undefined);
    };
    attempt.step = "polling handshake (waiting for the Engine.IO open packet)";
    const engine = socket.io.engine;
    engine.once("open", () => {
      attempt.details.push(`sid ${engine.id}`);
      attempt.step = "socket.io connect over polling (waiting for 40)";
    });
    engine.on("upgrading", () => {
      upgradeStep = "upgrade (websocket probe sent, waiting for the probe answer and the switch)";
      if (attempt.opened) progress();
    });
    engine.once("upgrade", () => {
      upgraded = true;
      if (attempt.opened) progress();
    });
    engine.once("upgradeError", (error: Error) => finish(attempt, `upgrade error: ${error.message}`));
    socket.once("connect_error", (error: Error) => finish(attempt, `connect_error: ${error.message}`));
    socket.on("disconnect", (why: string) => {
      finish(attempt, `disconnect: ${why}`);
      closed();
    });
    socket.once("connect", () => {
      attempt.opened = true;
      if (attempt.state === "pending") counts.polling.opened++;
      progress();
      socket.timeout(CLIENT_TIMEOUT_MS).emit("register", { payload: { public_key: `stress-${start.runId}-${attempt.index}` } }, (error: Error | null, reply: { type?: string; payload?: { code?: number } }) => {
        if (error !== null) {
          finish(attempt, `no register ack within ${CLIENT_TIMEOUT_MS} ms`);
          return;
        }
        if (reply.type !== "registered") {
          finish(attempt, `register answered ${JSON.stringify(reply)}`);
          return;
        }
        attempt.registered = true;
        if (attempt.state === "pending") counts.polling.registered++;
        progress();
      });
    });
  };

  const lane = async (queue: number[]): Promise<void> => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      if (performance.now() > openDeadline) {
        reason(`not attempted: the opening phase passed its bound of ${params.maxMs / 1000} s`);
        continue;
      }
      const transport = params.mix[next % params.mix.length] as StressTransport;
      const attempt: Attempt = {
        index: next,
        transport,
        began: performance.now(),
        step: "tcp connect",
        details: [],
        state: "pending",
        opened: false,
        registered: false,
        close: () => undefined,
        closed: Promise.resolve(),
        onSettled: () => undefined,
      };
      attempts.push(attempt);
      counts[transport].attempted++;
      const outcome = new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          if (attempt.state !== "pending") return;
          attempt.state = "hung";
          counts[transport].hung++;
          settled++;
          const detail: HungConnection = { transport, loadProcess: shard, index: attempt.index, step: attempt.step, details: [...attempt.details], outcome: "still pending" };
          attempt.hung = detail;
          if (hung.length < 200) hung.push(detail);
          resolve();
        }, params.deadlineMs);
        attempt.onSettled = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (transport === "polling") openPolling(attempt);
      else openWebSocket(attempt, transport, start.client);
      await outcome;
    }
  };

  const perProcess = Math.max(1, Math.ceil(params.concurrency / shards));
  const queue = [...indexes];
  const progressTimer = setInterval(() => {
    let completed = 0;
    let failed = 0;
    let hungCount = 0;
    for (const c of Object.values(counts)) {
      completed += c.completed;
      failed += c.failed;
      hungCount += c.hung;
    }
    post({ type: "progress", settled, completed, failed, hung: hungCount });
  }, PROGRESS_MS);
  await Promise.all(Array.from({ length: Math.min(perProcess, indexes.length) }, () => lane(queue)));
  const cpu = process.cpuUsage(cpu0);
  const openMs = (lastSettledAt || performance.now()) - t0;
  post({ type: "opened", openMs });

  // Hold every connection until the orchestrating job says close (all load processes done).
  await new Promise<void>((resolve) =>
    process.on("message", (message: ToStressClient) => {
      if (message.type === "close") resolve();
    }),
  );
  clearInterval(progressTimer);
  closing = true;
  for (const attempt of attempts) attempt.close();
  await Promise.race([Promise.all(attempts.map((attempt) => attempt.closed)), sleep(CLOSE_WAIT_MS)]);
  const summary: StressShardSummary = { counts, reasons, hung, latencies, openMs, cpuMs: (cpu.user + cpu.system) / 1000 };
  process.send?.({ type: "closed", summary } satisfies FromStressClient, undefined, {}, () => process.exit(0));
}

if (process.send === undefined) {
  console.error("bench/load/stress-client.ts is started by the stress job, not directly");
  process.exit(2);
}
process.once("message", (message: ToStressClient) => {
  if (message.type !== "start") return;
  run(message).catch((error: unknown) => {
    console.error(error instanceof Error ? error.stack : error);
    process.exit(1);
  });
});
// The job (our parent) going away ends this process.
process.on("disconnect", () => process.exit(0));
post({ type: "ready" });
