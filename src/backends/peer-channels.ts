/**
 * One channel per registered peer, across the nodes of a deployment: a node sends a frame straight
 * to the node that holds the peer, with no lookup before and no adapter in between, and learns from
 * the send itself whether any node holds it. Only backends whose nodes are separate processes
 * sharing a broker have it (Redis); one process and the workers of one machine need none.
 */
export interface PeerChannels {
  /**
   * This process holds `peer` from now on: frames sent to it arrive here (see onFrame). Resolves
   * once the broker confirmed it (never rejects: a failure is the broker's outage, which the node
   * recovers from as a whole). Holding twice is holding once.
   */
  hold(peer: string): Promise<void>;
  /** This process no longer holds `peer`. */
  release(peer: string): void;
  /**
   * Sends `frame` to whichever process holds `peer`; resolves with how many received it, 0 when no
   * process holds it. Rejects at once (503) while the broker is unreachable: a frame never waits
   * for it to come back. Frames sent from one process reach their receiver in the order they were
   * sent, also relative to what that process broadcasts through the Socket.IO adapter.
   */
  send(peer: string, frame: string): Promise<number>;
  /**
   * True while this process's own subscription to the broker is down and for a moment after it
   * came back: the other processes are subscribing again, so a peer no process holds may just not
   * be held yet.
   */
  settling(): boolean;
  /** Where the frames for the peers held here go; one receiver. */
  onFrame(receive: (peer: string, frame: string) => void): void;
}
