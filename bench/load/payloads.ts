/**
 * Signal payloads of realistic sizes: an SDP offer (~1.5 KB of JSON) and an ICE candidate
 * (~200 B). Each carries `t`, the load process's send time, first, so a receiver on /ws can read
 * it without parsing the whole frame.
 */

const SDP_LINES = [
  "v=0",
  "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
  "s=-",
  "t=0 0",
  "a=group:BUNDLE 0 1",
  "a=extmap-allow-mixed",
  "a=msid-semantic: WMS",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
  "c=IN IP4 0.0.0.0",
  "a=rtcp:9 IN IP4 0.0.0.0",
  "a=ice-ufrag:Hk4q",
  "a=ice-pwd:wYq3VUvDLLcNHC7Bsd2Tz4Fh",
  "a=ice-options:trickle",
  "a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:C5:9C:B2:4C:4B:B6:61:BB:96:AF:8E:3B",
  "a=setup:actpass",
  "a=mid:0",
  "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
  "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
  "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
  "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
  "a=sendrecv",
  "a=msid:- 7d0c1f6e-5e5b-4c1c-9b0e-2b8e8f8a6f11",
  "a=rtcp-mux",
  "a=rtpmap:111 opus/48000/2",
  "a=rtcp-fb:111 transport-cc",
  "a=fmtp:111 minptime=10;useinbandfec=1",
  "a=rtpmap:63 red/48000/2",
  "a=fmtp:63 111/111",
  "a=rtpmap:9 G722/8000",
  "a=rtpmap:0 PCMU/8000",
  "a=rtpmap:8 PCMA/8000",
  "a=ssrc:3735928559 cname:Qx4ZbN1m0rKqWJ2v",
  "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
  "c=IN IP4 0.0.0.0",
  "a=ice-ufrag:Hk4q",
  "a=ice-pwd:wYq3VUvDLLcNHC7Bsd2Tz4Fh",
  "a=ice-options:trickle",
  "a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:C5:9C:B2:4C:4B:B6:61:BB:96:AF:8E:3B",
  "a=setup:actpass",
  "a=mid:1",
  "a=sctp-port:5000",
  "a=max-message-size:262144",
];

export const SDP = `${SDP_LINES.join("\r\n")}\r\n`;

const CANDIDATE = {
  candidate: "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 192.168.1.23 rport 46154 generation 0",
  sdpMid: "0",
  sdpMLineIndex: 0,
};

export type PayloadKind = "sdp" | "ice";

/** The payload object for Socket.IO clients. */
export function payloadObject(kind: PayloadKind, t: number): Record<string, unknown> {
  return kind === "sdp" ? { t, signal_type: "offer", sdp: SDP } : { t, signal_type: "candidate", candidate: CANDIDATE };
}

/** The payload's JSON after `{"t":<number>` — for /ws clients that splice the number in. */
export function payloadTail(kind: PayloadKind): string {
  const json = JSON.stringify(payloadObject(kind, 0));
  return json.slice(json.indexOf(",")); // from the comma after "t":0 to the closing brace
}

/** Size of the payload JSON in bytes (with a typical timestamp). */
export function payloadBytes(kind: PayloadKind): number {
  return Buffer.byteLength(JSON.stringify(payloadObject(kind, 123_456.789)));
}
