import type { PeerClient, Received } from "./client.ts";
import { Emitter } from "./emitter.ts";

/**
 * What travels in `signal` payloads between two links: the seed protocol's `signal_type` with an
 * SDP or an ICE candidate. Signals of any other shape are left to the application.
 */
type SignalPayload = { signal_type: "offer" | "answer"; sdp: string } | { signal_type: "candidate"; candidate: RTCIceCandidateInit };

export interface PeerLinkEvents {
  /** A data channel the other side created (negotiated channels are made on both sides with `channel()`). */
  datachannel: RTCDataChannel;
  /** A media track the other side added. */
  track: RTCTrackEvent;
  /** The RTCPeerConnection's connection state. */
  state: RTCPeerConnectionState;
  /** A signaling step failed (an SDP or candidate the browser refused, a signal the server refused). */
  error: Error;
}

/** How long the polite side lets its offer gather before rolling it back for the other side's. */
const OFFER_GATHER_WAIT_MS = 2_000;

/**
 * One WebRTC connection to another peer, negotiated over the server's `signal` with the "perfect
 * negotiation" pattern: either side may add channels or tracks at any time and offer; when both
 * offer at once, the impolite side ignores the other's offer and the polite side rolls its own back
 * and answers. Which side is polite is decided without a word exchanged: the one whose fingerprint
 * sorts first. ICE candidates trickle through `signal` as they are found.
 */
export class PeerLink extends Emitter<PeerLinkEvents> {
  readonly pc: RTCPeerConnection;
  /** The polite side yields when both offer at once. */
  readonly polite: boolean;
  private makingOffer = false;
  private ignoreOffer = false;
  /** Whether this side's latest offer has found a candidate of its own. */
  private offerGathered = false;
  /** Signals from the remote peer, handled one after the other in the order they came. */
  private incoming: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: PeerClient,
    /** The other peer's fingerprint. */
    readonly remote: string,
    local: string,
    pc: RTCPeerConnection,
  ) {
    super();
    this.pc = pc;
    this.polite = local < remote;
    pc.onnegotiationneeded = () => void this.offer();
    pc.onicecandidate = ({ candidate }) => {
      if (candidate === null) return;
      this.offerGathered = true;
      this.send({ signal_type: "candidate", candidate: candidate.toJSON() });
    };
    pc.oniceconnectionstatechange = () => {
      if (pc.iceConnectionState === "failed") pc.restartIce();
    };
    pc.onconnectionstatechange = () => this.emit("state", pc.connectionState);
    pc.ondatachannel = ({ channel }) => this.emit("datachannel", channel);
    pc.ontrack = (event) => this.emit("track", event);
  }

  /**
   * A negotiated data channel: both sides call this with the same label and `id`, and both get
   * the same channel, whoever calls first, with no offer of its own to race the other's.
   */
  channel(label: string, options: { id?: number } & Omit<RTCDataChannelInit, "negotiated" | "id"> = {}): RTCDataChannel {
    const { id = 0, ...init } = options;
    return this.pc.createDataChannel(label, { ...init, negotiated: true, id });
  }

  /** Sends a media track (the link renegotiates by itself). */
  addTrack(track: MediaStreamTrack, ...streams: MediaStream[]): RTCRtpSender {
    return this.pc.addTrack(track, ...streams);
  }

  close(): void {
    this.pc.close();
  }

  /**
   * A `signal` from the remote peer. Signals are handled in the order they arrive, each after the
   * one before: a candidate waits for the offer it belongs to, an offer for the answer before it.
   */
  receive(payload: SignalPayload): Promise<void> {
    this.incoming = this.incoming.then(() => this.handle(payload));
    return this.incoming;
  }

  private async handle(payload: SignalPayload): Promise<void> {
    const pc = this.pc;
    try {
      if (payload.signal_type === "candidate") {
        try {
          await pc.addIceCandidate(payload.candidate);
        } catch (error) {
          // Candidates of an offer this side ignored fail to apply: expected, not an error.
          if (!this.ignoreOffer) throw error;
        }
        return;
      }
      const collision = payload.signal_type === "offer" && (this.makingOffer || pc.signalingState !== "stable");
      this.ignoreOffer = !this.polite && collision;
      if (this.ignoreOffer) return;
      if (collision) await this.letOfferGather();
      // The polite side's setRemoteDescription rolls its own pending offer back implicitly.
      await pc.setRemoteDescription({ type: payload.signal_type, sdp: payload.sdp });
      if (payload.signal_type === "offer") {
        await pc.setLocalDescription();
        this.sendDescription();
      }
    } catch (error) {
      this.emit("error", error instanceof Error ? error : new Error(String(error)));
    }
  }

  /**
   * Waits (at most OFFER_GATHER_WAIT_MS) until this side's pending offer has found a candidate or
   * finished gathering. Chromium never gathers again on a connection whose offer was rolled back
   * before it found its first candidate: the answer that follows would have none, and the link
   * would stay in ICE "new" for good. Both sides connecting at once makes exactly that rollback.
   */
  private letOfferGather(): Promise<void> {
    const pc = this.pc;
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        pc.removeEventListener("icecandidate", check);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      };
      const check = (): void => {
        if (this.offerGathered || pc.iceGatheringState === "complete" || pc.signalingState === "closed") done();
      };
      const timer = setTimeout(done, OFFER_GATHER_WAIT_MS);
      pc.addEventListener("icecandidate", check);
      pc.addEventListener("icegatheringstatechange", check);
      check();
    });
  }

  private async offer(): Promise<void> {
    try {
      this.makingOffer = true;
      this.offerGathered = false;
      await this.pc.setLocalDescription();
      this.sendDescription();
    } catch (error) {
      this.emit("error", error instanceof Error ? error : new Error(String(error)));
    } finally {
      this.makingOffer = false;
    }
  }

  private sendDescription(): void {
    const description = this.pc.localDescription;
    if (description === null || (description.type !== "offer" && description.type !== "answer")) return;
    this.send({ signal_type: description.type, sdp: description.sdp });
  }

  private send(payload: SignalPayload): void {
    this.client.signal(this.remote, payload).catch((error: unknown) => this.emit("error", error instanceof Error ? error : new Error(String(error))));
  }
}

export interface PeerConnectionsOptions {
  /** RTCPeerConnection settings; without `iceServers`, those of the client's registration are used (the server's STUN/TURN), else none. */
  configuration?: RTCConfiguration;
  /** The RTCPeerConnection constructor: the global one by default. */
  RTCPeerConnection?: new (configuration?: RTCConfiguration) => RTCPeerConnection;
  /** Whether a peer that offers first gets a link (default: every peer). */
  accept?: (fingerprint: string) => boolean;
}

/**
 * The WebRTC links of one client, by remote fingerprint: `connect()` makes one, and a peer that
 * offers first gets one made for it (the `link` event). Signals with a `signal_type` go to the
 * link of their sender; the client registers before links are made (a link needs its fingerprint).
 */
export class PeerConnections extends Emitter<{ link: PeerLink }> {
  private readonly links = new Map<string, PeerLink>();
  private readonly stopListening: () => void;

  constructor(
    private readonly client: PeerClient,
    private readonly options: PeerConnectionsOptions = {},
  ) {
    super();
    this.stopListening = client.on("signal", (message) => this.onSignal(message));
  }

  /** The link to `fingerprint`, made when there is none. */
  connect(fingerprint: string): PeerLink {
    const existing = this.links.get(fingerprint);
    if (existing !== undefined && existing.pc.connectionState !== "closed") return existing;
    const local = this.client.fingerprint;
    if (local === undefined) throw new Error("register the client before connecting to peers");
    const Connection = this.options.RTCPeerConnection ?? (globalThis as { RTCPeerConnection?: new (configuration?: RTCConfiguration) => RTCPeerConnection }).RTCPeerConnection;
    if (Connection === undefined) throw new Error("no RTCPeerConnection here: pass the RTCPeerConnection option");
    const link = new PeerLink(this.client, fingerprint, local, new Connection(this.configuration()));
    this.links.set(fingerprint, link);
    link.on("state", (state) => {
      if (state === "closed" && this.links.get(fingerprint) === link) this.links.delete(fingerprint);
    });
    return link;
  }

  get(fingerprint: string): PeerLink | undefined {
    return this.links.get(fingerprint);
  }

  /** Closes every link and stops listening to the client's signals. */
  close(): void {
    this.stopListening();
    for (const link of this.links.values()) link.close();
    this.links.clear();
  }

  private configuration(): RTCConfiguration {
    const given = this.options.configuration ?? {};
    if (given.iceServers !== undefined) return given;
    const servers = this.client.iceServers;
    if (servers === undefined) return given;
    return { ...given, iceServers: servers.map((server) => ({ urls: [...server.urls], username: server.username, credential: server.credential })) };
  }

  private onSignal(message: Received<"signal">): void {
    const payload = message.payload as Partial<SignalPayload> | null;
    const kind = payload?.signal_type;
    if (kind !== "offer" && kind !== "answer" && kind !== "candidate") return;
    let link = this.links.get(message.from);
    if (link === undefined) {
      if (kind !== "offer" || this.options.accept?.(message.from) === false) return;
      link = this.connect(message.from);
      this.emit("link", link);
    }
    void link.receive(payload as SignalPayload);
  }
}
