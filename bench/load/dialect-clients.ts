import { createHash } from "node:crypto";
import { connectClient, forEachBounded, type BenchClient } from "./clients.ts";
import type { JobContext } from "./context.ts";
import { SDP } from "./payloads.ts";
import type { DialectName } from "./protocol.ts";

/**
 * The dialects' clients as the bench drives them: each opens the dialect's WebSocket path with the
 * run's client kind (wire or the `ws` package), sets up pairs the way that dialect's users do, and
 * sends SDP offers that carry the load process's send time inside the SDP text (the session id of
 * the `o=` line), so that every relay forwards it untouched and the receiver reads it without
 * parsing the frame.
 */

export type Frame = Record<string, unknown>;

const SDP_JSON = JSON.stringify(SDP);
const SESSION_AT = SDP_JSON.indexOf("o=- ") + 4;
/** The SDP as a JSON string literal, cut around the `o=` line's session id. */
const SDP_HEAD = SDP_JSON.slice(0, SESSION_AT);
const SDP_TAIL = SDP_JSON.slice(SDP_JSON.indexOf(" ", SESSION_AT));
/** Where a received frame's send time starts: the text after the first "o=- ". */
export const TIME_MARK = "o=- ";

/** The send time carried by a received offer's text (NaN when absent). */
export function sentAt(text: string): number {
  const at = text.indexOf(TIME_MARK);
  return at < 0 ? Number.NaN : Number.parseFloat(text.slice(at + 4, at + 40));
}

/** Size of the offer's SDP string in bytes (with a typical timestamp). */
export const SDP_BYTES = Buffer.byteLength(JSON.parse(`${SDP_HEAD}123456.789${SDP_TAIL}`) as string);

const clip = (text: string, max = 300): string => (text.length > max ? `${text.slice(0, max)}...` : text);

function parse(text: string): Frame {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Frame) : { type: "<not an object>", text: clip(text) };
  } catch {
    return { type: "<invalid JSON>", text: clip(text) };
  }
}

/** Frame types that mean the server refused something (PeerPigeon, random chat `error`; p2p `AUTH_ERROR`). */
const ERROR_TYPES = new Set(["error", "AUTH_ERROR"]);

interface Waiter {
  readonly match: (frame: Frame) => boolean;
  resolve(frame: Frame): void;
}

/**
 * A dialect client during set-up: it keeps every frame it receives until a `next()` takes it, and
 * notes error frames. The measurement then replaces `client.onText` with its own handler.
 */
export class DialectPeer {
  private readonly frames: Frame[] = [];
  private readonly waiters = new Set<Waiter>();
  errors = 0;
  firstError = "";

  private constructor(readonly client: BenchClient) {}

  /** Opens client `index` of a dialect on the target's endpoint `index` (round-robin), with the run's client kind. */
  static async open(context: JobContext, index: number, path: string): Promise<DialectPeer> {
    const early: string[] = [];
    // Frames that come before the client is returned (a greeting sent with the 101) wait here.
    const client = await connectClient(context.client, "ws", context.endpoint(index), undefined, 20_000, { path, onText: (text) => early.push(text) > 0 });
    const peer = new DialectPeer(client);
    client.onText = (text) => {
      peer.push(parse(text));
      return true;
    };
    for (const text of early) peer.push(parse(text));
    return peer;
  }

  push(frame: Frame): void {
    if (typeof frame["type"] === "string" && ERROR_TYPES.has(frame["type"])) {
      this.errors++;
      this.firstError ||= clip(JSON.stringify(frame));
    }
    for (const waiter of this.waiters) {
      if (!waiter.match(frame)) continue;
      this.waiters.delete(waiter);
      waiter.resolve(frame);
      return;
    }
    this.frames.push(frame);
    if (this.frames.length > 100) this.frames.shift();
  }

  /** Takes the first frame received (or to come) that satisfies `match`; rejects after `timeoutMs` with what did arrive. */
  next(match: (frame: Frame) => boolean, what: string, timeoutMs = 15_000): Promise<Frame> {
    const index = this.frames.findIndex(match);
    if (index >= 0) return Promise.resolve(this.frames.splice(index, 1)[0] as Frame);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        const seen = this.frames.slice(-5).map((frame) => clip(JSON.stringify(frame), 200));
        reject(new Error(`no ${what} within ${timeoutMs / 1000} s${this.client.isClosed ? ` (${this.client.closeReason ?? "closed"})` : ""}; last frames: ${seen.join(" | ") || "none"}`));
      }, timeoutMs);
      const waiter: Waiter = {
        match,
        resolve: (frame) => {
          clearTimeout(timer);
          resolve(frame);
        },
      };
      this.waiters.add(waiter);
    });
  }

  nextOfType(type: string, what: string = type, timeoutMs?: number): Promise<Frame> {
    return this.next((frame) => frame["type"] === type, what, timeoutMs);
  }

  send(frame: Frame): void {
    this.client.sendText(JSON.stringify(frame));
  }
}

/** The WebSocket path of each dialect (PeerPigeon adds `?peerId=`). */
export const DIALECT_PATHS: Readonly<Record<DialectName, string>> = { pigeon: "/pigeon", p2p: "/p2p/ws", randomchat: "/randomchat/ws" };

/** A PeerPigeon peerId: 40 hex characters, unique per run and client. */
export const pigeonPeerId = (runId: string, index: number): string => createHash("sha1").update(`${runId}-${index}`).digest("hex");

/** The pairs a dialect's set-up formed, and what each client sends and expects. */
export interface DialectPairs {
  readonly peers: readonly DialectPeer[];
  /** Client index of each client's partner. */
  readonly partner: readonly number[];
  /** Client i's offer is `head[i] + sendTime + tail[i]`. */
  readonly head: readonly string[];
  readonly tail: readonly string[];
  /** The start of a received offer's text when the dialect puts `type` first (the fast path). */
  readonly prefix: string;
  /** The `type` of a received offer. */
  readonly offerType: string;
  /** What is wrong with an offer client i received (parsed), or undefined when it is what the dialect specifies. */
  check(index: number, frame: Frame): string | undefined;
}

/** Keys beyond `allowed`, for the checks. */
function extraKeys(frame: Frame, allowed: readonly string[]): string[] {
  return Object.keys(frame).filter((key) => !allowed.includes(key));
}

/** The SDP of a received offer must be the sent one: "v=0", the send time, then the rest unchanged. */
function sdpProblem(sdp: unknown): string | undefined {
  if (typeof sdp !== "string") return `sdp is ${typeof sdp}, not a string`;
  const expected = JSON.parse(`${SDP_HEAD}${sentAt(JSON.stringify(sdp))}${SDP_TAIL}`) as string;
  return sdp === expected ? undefined : "the SDP text was altered";
}

/** Runs `check` on a received offer and prefixes the problems with who received it. */
function problems(label: string, found: (string | undefined | false)[]): string | undefined {
  const list = found.filter((item): item is string => typeof item === "string");
  return list.length === 0 ? undefined : `${label}: ${list.join("; ")}`;
}

/**
 * PeerPigeon: per pair, both connect with their peerId, receive `connected`, announce into the
 * pair's own network (as the JS client does: `{type:"announce", data:{peerId}, maxPeers, networkName}`)
 * and see each other in `peer-discovered`. The offer is the JS client's signaling message.
 */
export async function setUpPigeon(context: JobContext, runId: string, pairs: number, onDone: (done: number) => void): Promise<DialectPairs> {
  const total = pairs * 2;
  const peers: DialectPeer[] = [];
  const ids = Array.from({ length: total }, (_, index) => pigeonPeerId(runId, index));
  const network = (index: number): string => `bench-${runId}-${index >> 1}`;
  await forEachBounded(
    pairs,
    25,
    performance.now() + 120_000,
    async (pair) => {
      const [a, b] = [pair * 2, pair * 2 + 1];
      for (const index of [a, b]) {
        const peer = await DialectPeer.open(context, index, `${DIALECT_PATHS.pigeon}?peerId=${ids[index]}`);
        peers[index] = peer;
        const connected = await peer.nextOfType("connected", "`connected` greeting");
        const data = connected["data"] as Frame | undefined;
        if (data?.["peerId"] !== ids[index]) throw new Error(`connected greeting names ${JSON.stringify(data)}, not ${ids[index]}`);
      }
      for (const index of [a, b]) (peers[index] as DialectPeer).send({ type: "announce", data: { peerId: ids[index] }, maxPeers: 3, networkName: network(index) });
      await Promise.all(
        [a, b].map((index) => {
          const other = ids[index ^ 1];
          return (peers[index] as DialectPeer).next((frame) => frame["type"] === "peer-discovered" && (frame["data"] as Frame | undefined)?.["peerId"] === other, `peer-discovered for its partner (client ${index})`);
        }),
      );
    },
    (done) => onDone(done * 2),
  );
  const head = `{"type":"offer","data":{"type":"offer","sdp":${SDP_HEAD}`;
  return {
    peers,
    partner: ids.map((_, index) => index ^ 1),
    head: ids.map(() => head),
    tail: ids.map((_, index) => `${SDP_TAIL}},"maxPeers":3,"networkName":"${network(index)}","targetPeerId":"${ids[index ^ 1]}"}`),
    prefix: '{"type":"offer"',
    offerType: "offer",
    check: (index, frame) => {
      const data = frame["data"] as Frame | undefined;
      return problems(`PeerPigeon offer received by client ${index}`, [
        frame["fromPeerId"] !== ids[index ^ 1] && `fromPeerId ${JSON.stringify(frame["fromPeerId"])}, expected the sender ${ids[index ^ 1]}`,
        frame["targetPeerId"] !== ids[index] && `targetPeerId ${JSON.stringify(frame["targetPeerId"])}, expected ${ids[index]}`,
        frame["networkName"] !== network(index) && `networkName ${JSON.stringify(frame["networkName"])}, expected ${network(index)}`,
        typeof frame["timestamp"] !== "number" && `timestamp ${JSON.stringify(frame["timestamp"])}, expected a number (ms)`,
        (typeof data !== "object" || data === null) && "no data object",
        data?.["type"] !== "offer" && `data.type ${JSON.stringify(data?.["type"])}`,
        sdpProblem(data?.["sdp"]),
        data !== undefined && extraKeys(data, ["type", "sdp"]).length > 0 && `data gained ${extraKeys(data, ["type", "sdp"]).join(", ")}`,
        extraKeys(frame, ["type", "data", "fromPeerId", "targetPeerId", "networkName", "timestamp"]).length > 0 &&
          `unexpected fields ${extraKeys(frame, ["type", "data", "fromPeerId", "targetPeerId", "networkName", "timestamp"]).join(", ")}`,
      ]);
    },
  };
}

/**
 * p2p-go-app: per pair, both IDENTIFY, then the first joins the pair's room, then the second; the
 * second learns the first's server id from ROOM_MEMBERS, the first the second's from
 * NEW_PEER_IN_ROOM. The offer is `{type:"SDP_OFFER", toPeerId, sdp:{type:"offer", sdp}}`.
 */
export async function setUpP2p(context: JobContext, runId: string, pairs: number, onDone: (done: number) => void): Promise<DialectPairs> {
  const peers: DialectPeer[] = [];
  const username = (index: number): string => `bench-${runId}-${index}`;
  /** known[i]: the server id of client i's partner, as client i was told. */
  const known: string[] = [];
  await forEachBounded(
    pairs,
    25,
    performance.now() + 120_000,
    async (pair) => {
      const [a, b] = [pair * 2, pair * 2 + 1];
      for (const index of [a, b]) {
        const peer = await DialectPeer.open(context, index, DIALECT_PATHS.p2p);
        peers[index] = peer;
        peer.send({ type: "IDENTIFY", username: username(index) });
        const reply = await peer.next((frame) => frame["type"] === "AUTH_SUCCESS" || frame["type"] === "AUTH_ERROR", "AUTH_SUCCESS");
        if (reply["type"] !== "AUTH_SUCCESS" || reply["username"] !== username(index)) throw new Error(`IDENTIFY answered ${JSON.stringify(reply)}`);
      }
      const roomId = `bench-${runId}-${pair}`;
      const [first, second] = [peers[a] as DialectPeer, peers[b] as DialectPeer];
      first.send({ type: "JOIN_ROOM", roomId });
      const empty = await first.nextOfType("ROOM_MEMBERS");
      if (!Array.isArray(empty["members"]) || empty["members"].length !== 0) throw new Error(`ROOM_MEMBERS of a new room lists ${JSON.stringify(empty["members"])}`);
      second.send({ type: "JOIN_ROOM", roomId });
      const [members, joined] = await Promise.all([second.nextOfType("ROOM_MEMBERS"), first.nextOfType("NEW_PEER_IN_ROOM")]);
      const member = (members["members"] as Frame[] | undefined)?.find((entry) => entry["username"] === username(a));
      const peer = joined["peer"] as Frame | undefined;
      if (typeof member?.["id"] !== "string") throw new Error(`ROOM_MEMBERS lacks the first member: ${JSON.stringify(members)}`);
      if (peer?.["username"] !== username(b) || typeof peer["id"] !== "string") throw new Error(`NEW_PEER_IN_ROOM names ${JSON.stringify(joined)}`);
      known[b] = member["id"];
      known[a] = peer["id"];
    },
    (done) => onDone(done * 2),
  );
  return {
    peers,
    partner: peers.map((_, index) => index ^ 1),
    head: known.map((id) => `{"type":"SDP_OFFER","toPeerId":"${id}","sdp":{"type":"offer","sdp":${SDP_HEAD}`),
    tail: known.map(() => `${SDP_TAIL}}}`),
    prefix: '{"type":"SDP_OFFER"',
    offerType: "SDP_OFFER",
    check: (index, frame) => {
      const sdp = frame["sdp"] as Frame | undefined;
      return problems(`p2p SDP_OFFER received by client ${index}`, [
        frame["fromPeerId"] !== known[index] && `fromPeerId ${JSON.stringify(frame["fromPeerId"])}, expected the sender's id ${known[index]}`,
        frame["toPeerId"] !== undefined && frame["toPeerId"] !== known[index ^ 1] && `toPeerId ${JSON.stringify(frame["toPeerId"])}, expected ${known[index ^ 1]}`,
        (typeof sdp !== "object" || sdp === null) && "no sdp object",
        sdp?.["type"] !== "offer" && `sdp.type ${JSON.stringify(sdp?.["type"])}`,
        sdpProblem(sdp?.["sdp"]),
        extraKeys(frame, ["type", "fromPeerId", "toPeerId", "sdp"]).length > 0 && `unexpected fields ${extraKeys(frame, ["type", "fromPeerId", "toPeerId", "sdp"]).join(", ")}`,
      ]);
    },
  };
}

/** Random chat: everyone connects and reads its `ready` clientId; then each sends `available` and the server pairs them. */
export async function connectRandomChat(context: JobContext, total: number, concurrency: number, onDone: (done: number) => void): Promise<{ peers: DialectPeer[]; clientIds: string[] }> {
  const peers: DialectPeer[] = [];
  const clientIds: string[] = [];
  await forEachBounded(
    total,
    concurrency,
    performance.now() + 180_000,
    async (index) => {
      const peer = await DialectPeer.open(context, index, DIALECT_PATHS.randomchat);
      peers[index] = peer;
      const ready = await peer.nextOfType("ready", "`ready` greeting");
      if (typeof ready["clientId"] !== "string" || ready["clientId"] === "") throw new Error(`ready without a clientId: ${JSON.stringify(ready)}`);
      clientIds[index] = ready["clientId"];
    },
    onDone,
  );
  return { peers, clientIds };
}

/**
 * Partner index of each client from the `matched` frames (`partnerIds[i]`, the partnerId client i
 * was given); throws when a partnerId is unknown, or the pairing is not symmetric.
 */
export function partnersOf(clientIds: readonly string[], partnerIds: readonly (string | undefined)[]): number[] {
  const byId = new Map(clientIds.map((id, index) => [id, index]));
  if (byId.size !== clientIds.length) throw new Error("two connections were given the same clientId");
  const partner = partnerIds.map((id, index) => {
    const other = id === undefined ? undefined : byId.get(id);
    if (other === undefined) throw new Error(`client ${index} was matched with ${JSON.stringify(id)}, which is no clientId of this run`);
    if (other === index) throw new Error(`client ${index} was matched with itself`);
    return other;
  });
  for (const [index, other] of partner.entries()) {
    if (partner[other] !== index) throw new Error(`client ${index} was matched with client ${other}, who was matched with client ${partner[other]}`);
  }
  return partner;
}

/** Random chat offers: `{type:"offer", sdp}` to whoever the server paired the sender with, received as `{type:"offer", from, sdp}`. */
export async function setUpRandomChat(context: JobContext, pairs: number, onDone: (done: number) => void): Promise<DialectPairs> {
  const total = pairs * 2;
  const { peers, clientIds } = await connectRandomChat(context, total, 50, onDone);
  const matched = await Promise.all(
    peers.map((peer) => {
      peer.client.sendText('{"type":"available"}');
      return peer.nextOfType("matched", "`matched`", 30_000);
    }),
  );
  const partnerIds = matched.map((frame) => (typeof frame["partnerId"] === "string" ? frame["partnerId"] : undefined));
  const partner = partnersOf(clientIds, partnerIds);
  const head = `{"type":"offer","sdp":${SDP_HEAD}`;
  return {
    peers,
    partner,
    head: peers.map(() => head),
    tail: peers.map(() => `${SDP_TAIL}}`),
    prefix: '{"type":"offer"',
    offerType: "offer",
    check: (index, frame) =>
      problems(`random-chat offer received by client ${index}`, [
        frame["from"] !== partnerIds[index] && `from ${JSON.stringify(frame["from"])}, expected the partner ${partnerIds[index]}`,
        sdpProblem(frame["sdp"]),
        extraKeys(frame, ["type", "from", "sdp"]).length > 0 && `unexpected fields ${extraKeys(frame, ["type", "from", "sdp"]).join(", ")}`,
      ]),
  };
}

/** Sets up `pairs` pairs of a dialect's clients. */
export function setUpPairs(dialect: DialectName, context: JobContext, runId: string, pairs: number, onDone: (done: number) => void): Promise<DialectPairs> {
  switch (dialect) {
    case "pigeon":
      return setUpPigeon(context, runId, pairs, onDone);
    case "p2p":
      return setUpP2p(context, runId, pairs, onDone);
    case "randomchat":
      return setUpRandomChat(context, pairs, onDone);
  }
}
