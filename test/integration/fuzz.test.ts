import { randomBytes } from "node:crypto";
import type fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { oversizeCase, runOversizeCase, runUtf8Case, showOversizeCase, showUtf8Case, utf8Case, type CloseTarget } from "../helpers/fuzz-close.ts";
import { batch, type Batch, type Family } from "../helpers/fuzz-frames.ts";
import { KeepalivePair, Witness, type KeepaliveReport } from "../helpers/fuzz-peers.ts";
import { checkProperty, type PropertyOutcome } from "../helpers/fuzz-property.ts";
import { MAX_MESSAGE_SIZE, showFrame } from "../helpers/fuzz-protocol.ts";
import type { Lane } from "../helpers/fuzz-runs.ts";
import { runSioBatch } from "../helpers/fuzz-sio-run.ts";
import { runWsBatch } from "../helpers/fuzz-ws-run.ts";
import { closeAll, registeredPeer, type TestPeer, type Transport } from "../helpers/peers.ts";
import { getJson, startServer, type ServerProcess } from "../helpers/server-process.ts";

/**
 * Property-based fuzzing of both transports of a 2-worker cluster. Every property runs from a
 * fixed seed (FUZZ_SEED overrides it; FUZZ_REPLAY="<property>=<path>" replays one reported
 * counterexample); all of them run at once against the one server, each run on a fresh
 * connection, and the tests below await their outcomes. Rate limits and send buffers are set
 * out of the way: what is checked is the answer to each malformed frame, not flow control.
 *
 * Checked: every frame gets the answer the protocol defines, matched to the frame; the lane's
 * witness receives exactly what the accepted frames allow; no process exits; an unrelated pair of
 * peers keeps signalling every 50 ms throughout and loses nothing.
 */

const BASE_SEED = Number(process.env["FUZZ_SEED"] ?? 20_250_611);
if (!Number.isSafeInteger(BASE_SEED)) throw new Error(`FUZZ_SEED must be an integer, got ${process.env["FUZZ_SEED"]}`);
const [REPLAY_NAME, REPLAY_PATH] = (process.env["FUZZ_REPLAY"] ?? "=").split("=") as [string, string];
const FAMILIES: readonly Family[] = ["malformed", "fields", "deep", "plausible", "mixed"];
const TITLES: Record<Family, string> = {
  malformed: "frames that are no envelope (invalid or truncated JSON, other JSON values, wrong or unknown types, binary frames; Socket.IO: bad packets) get error 400",
  fields: "requests with a field of the wrong kind, or prototype names as keys and values, get their reply or a 4xx",
  deep: "requests nested deeper than max_json_depth (up to 20,000 levels) get error 400 and deliver nothing; shallower ones are handled",
  plausible: "plausible requests of every type, registered or not, get their reply or a 4xx, and deliver exactly what they may",
  mixed: "a mix of all of these, answered in order",
};
/** Runs and frames per run: about 40 frames a run on average, so about 2,400 frames per family and transport. */
const RUNS = 60;
const MAX_FRAMES = 100;
const UTF8_RUNS = 60;
const OVERSIZE_RUNS = 100;
const MIN_FRAMES_PER_TRANSPORT = 10_000;
/**
 * Each property stops here, shrinking included. Alone the properties finish in about 15 s; beside
 * the rest of the suite on two cores they take two to three times that, and a slower machine must
 * not cut them short: a passing property cut short by it fails the volume test below, not its own.
 */
const TIME_LIMIT_MS = 150_000;
const TEST_TIMEOUT_MS = 180_000;

const transportName = (transport: Transport): string => (transport === "ws" ? "raw /ws" : "Socket.IO");
const other = (transport: Transport): Transport => (transport === "ws" ? "sio" : "ws");

let server: ServerProcess;
let processesBefore: { primary: number; workers: number[] };
let pair: KeepalivePair;
let keepalive: Promise<KeepaliveReport> | undefined;
const peers: TestPeer[] = [];
const outcomes = new Map<string, Promise<PropertyOutcome>>();
const framesBy = new Map<Transport, (Lane | CloseTarget)[]>([
  ["ws", []],
  ["sio", []],
]);
/** Where each property sent its frames, for the summary. */
const targetOf = new Map<string, Lane | CloseTarget>();

async function processIds(): Promise<{ primary: number; workers: number[] }> {
  const { body } = await getJson(`${server.http}/stats`);
  const workers = (body["workers"] as { pid: number }[]).map((worker) => worker.pid).sort((a, b) => a - b);
  return { primary: server.process.pid ?? -1, workers };
}

const showBatch = (value: Batch): string => `registered: ${value.registered}; ${value.frames.length} frame(s): ${value.frames.map((frame, i) => `\n  #${i} ${showFrame(frame)}`).join("")}`;

let propertyIndex = 0;
function start<T>(name: string, arbitrary: fc.Arbitrary<T>, numRuns: number, predicate: (value: T) => Promise<void>, show: (value: T) => string): void {
  const seed = BASE_SEED + propertyIndex++;
  outcomes.set(
    name,
    checkProperty(name, arbitrary, predicate, {
      seed,
      numRuns,
      timeLimitMs: TIME_LIMIT_MS,
      show,
      ...(REPLAY_NAME === name ? { path: REPLAY_PATH } : {}),
      replay: (path) => `FUZZ_SEED=${BASE_SEED} FUZZ_REPLAY='${name}=${path}' npx vitest run test/integration/fuzz.test.ts`,
    }),
  );
}

async function outcome(name: string): Promise<PropertyOutcome> {
  const pending = outcomes.get(name);
  if (pending === undefined) throw new Error(`property ${name} was not started (did beforeAll fail?)`);
  return pending;
}

const allSettled = async (): Promise<PropertyOutcome[]> => Promise.all(outcomes.values());

beforeAll(async () => {
  console.log(`fuzz: seed ${BASE_SEED} (FUZZ_SEED overrides it)`);
  server = await startServer({
    env: { PEER_WORKERS: "2" },
    config: { rate_limit_per_sec: 1_000_000, rate_limit_burst: 1_000_000, max_message_size: MAX_MESSAGE_SIZE, send_buffer_size: 100_000, log_level: "warn" },
  });
  processesBefore = await processIds();
  const keepaliveNamespace = `keepalive-${randomBytes(8).toString("hex")}`;
  const a = await registeredPeer(server, "ws", { namespace: keepaliveNamespace });
  const b = await registeredPeer(server, "sio", { namespace: keepaliveNamespace });
  peers.push(a, b);
  pair = new KeepalivePair(a, b);
  pair.start(50);

  for (const [t, transport] of (["ws", "sio"] as const).entries()) {
    for (const [f, family] of FAMILIES.entries()) {
      const shared = `fz-shared-${transport}-${family}-${randomBytes(4).toString("hex")}`;
      const witnessPeer = await registeredPeer(server, other(transport), { namespace: shared });
      peers.push(witnessPeer);
      const lane: Lane = {
        name: `fz${t}${f}x`,
        server,
        shared,
        witness: new Witness(witnessPeer),
        witnessFp: witnessPeer.fingerprint,
        witnessAlias: witnessPeer.alias,
        framesSent: 0,
        deliveriesChecked: 0,
      };
      framesBy.get(transport)?.push(lane);
      targetOf.set(`${transport}-${family}`, lane);
      const run = transport === "ws" ? runWsBatch : runSioBatch;
      start(`${transport}-${family}`, batch(family, transport === "sio", MAX_FRAMES), RUNS, (value) => run(lane, value), showBatch);
    }
    const closeTarget: CloseTarget = { name: `fz${t}c`, server, framesSent: 0 };
    framesBy.get(transport)?.push(closeTarget);
    targetOf.set(`${transport}-utf8`, closeTarget);
    targetOf.set(`${transport}-oversize`, closeTarget);
    start(`${transport}-utf8`, utf8Case, UTF8_RUNS, (value) => runUtf8Case(closeTarget, transport, value), showUtf8Case);
    start(`${transport}-oversize`, oversizeCase, OVERSIZE_RUNS, (value) => runOversizeCase(closeTarget, transport, value), showOversizeCase);
  }
  keepalive = allSettled().then(async (results) => {
    for (const result of results) {
      const target = targetOf.get(result.name);
      const deliveries = target !== undefined && "deliveriesChecked" in target ? `, ${target.deliveriesChecked} deliveries to the witness checked` : "";
      console.log(`fuzz: ${result.passed ? (result.complete ? "passed" : "passed (incomplete)") : "FAILED"} ${result.name}: ${result.runs} executions (shrinking included) in ${result.ms}ms${deliveries}`);
    }
    return pair.stop(5_000);
  });
}, 60_000);

afterAll(async () => {
  await keepalive?.catch(() => undefined);
  closeAll(peers);
  await server?.stop();
});

describe("fuzz: a 2-worker cluster answers every generated malformed frame as the protocol defines", () => {
  for (const transport of ["ws", "sio"] as const) {
    describe(transportName(transport), () => {
      for (const family of FAMILIES) {
        it(TITLES[family], async () => {
          const result = await outcome(`${transport}-${family}`);
          expect(result.passed, result.report).toBe(true);
        }, TEST_TIMEOUT_MS);
      }

      it("text frames that are not UTF-8 close the connection with 1007", async () => {
        const result = await outcome(`${transport}-utf8`);
        expect(result.passed, result.report).toBe(true);
      }, TEST_TIMEOUT_MS);

      it(`frames over max_message_size get {"code":400,"close_code":1009} and the connection closes (past twice the size the notice may be skipped)`, async () => {
        const result = await outcome(`${transport}-oversize`);
        expect(result.passed, result.report).toBe(true);
      }, TEST_TIMEOUT_MS);
    });
  }

  it(`sends at least ${MIN_FRAMES_PER_TRANSPORT.toLocaleString("en")} generated frames over each transport`, async () => {
    const results = await allSettled();
    const sent = Object.fromEntries([...framesBy].map(([transport, lanes]) => [transport, lanes.reduce((sum, lane) => sum + lane.framesSent, 0)]));
    console.log(`fuzz: generated frames sent: ${JSON.stringify(sent)}`);
    for (const transport of ["ws", "sio"] as const) {
      const mine = results.filter((result) => result.name.startsWith(`${transport}-`));
      const failed = mine.filter((result) => !result.passed).map((result) => result.name);
      const slow = mine.filter((result) => result.passed && !result.complete).map((result) => result.report);
      const why = [
        ...(failed.length === 0 ? [] : [`properties that failed stopped early: ${failed.join(", ")}`]),
        ...(slow.length === 0 ? [] : [`too slow for the time limit here: ${slow.join("; ")}`]),
      ].join("; ");
      expect(sent[transport], `${transportName(transport)}: ${sent[transport]} generated frames sent${why === "" ? "" : ` (${why})`}`).toBeGreaterThanOrEqual(MIN_FRAMES_PER_TRANSPORT);
    }
  }, TEST_TIMEOUT_MS);

  it("no process exited: the primary and both workers keep the pids they started with", async () => {
    await allSettled();
    expect(server.process.exitCode, server.output.slice(-20).join("\n")).toBeNull();
    expect(server.process.signalCode).toBeNull();
    expect(await processIds()).toEqual(processesBefore);
  }, TEST_TIMEOUT_MS);

  it("an unrelated pair (one peer per transport) kept signalling every 50 ms throughout: every signal arrived, in order", async () => {
    const report = await (keepalive as Promise<KeepaliveReport>);
    console.log(`fuzz: keepalive pair: ${report.received}/${report.sent} signals arrived, slowest ${report.slowestMs}ms`);
    expect(report.sent).toBeGreaterThan(100);
    expect({ missing: report.missing, duplicates: report.duplicates, outOfOrder: report.outOfOrder, errors: report.errors }).toEqual({ missing: [], duplicates: [], outOfOrder: [], errors: [] });
    expect(report.received).toBe(report.sent);
  }, TEST_TIMEOUT_MS);
});
