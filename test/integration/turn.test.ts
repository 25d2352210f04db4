import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../helpers/peers.ts";
import { startServer, type ServerProcess } from "../helpers/server-process.ts";
import { startTurnServer, type TurnServer } from "../helpers/turn-server.ts";

/**
 * TURN credentials: a peer's `registered` carries STUN and TURN servers with a time-limited
 * credential that a real coturn (`use-auth-secret`, the same secret) accepts for a relay
 * allocation, and that it refuses once tampered with or made with another secret.
 */

const SECRET = "shared-turn-secret";
let turn: TurnServer;
let server: ServerProcess;

beforeAll(async () => {
  turn = await startTurnServer(SECRET);
  server = await startServer({
    config: { turn_secret: SECRET, turn_urls: [`turn:127.0.0.1:${turn.port}?transport=udp`], turn_ttl: "10m", stun_urls: [`stun:127.0.0.1:${turn.port}`] },
  });
}, 30_000);
afterAll(async () => {
  await server?.stop();
  await turn?.stop();
});

interface Ice {
  urls: string[];
  username?: string;
  credential?: string;
}

describe("TURN credentials", () => {
  it.each(["ws", "sio"] as const)("%s: registered carries the STUN and TURN servers; coturn grants a relay with the credential and refuses a forged one", async (transport) => {
    const peer = await connect(server, transport);
    try {
      const registered = await peer.register();
      const iceServers = registered.payload?.["ice_servers"] as Ice[];
      expect(iceServers[0]).toEqual({ urls: [`stun:127.0.0.1:${turn.port}`] });
      const relay = iceServers[1] as Ice;
      expect(relay.urls).toEqual([`turn:127.0.0.1:${turn.port}?transport=udp`]);
      const [expiry, fingerprint] = (relay.username as string).split(":");
      expect(fingerprint).toBe(peer.fingerprint);
      const lifetime = Number(expiry) - Date.now() / 1000;
      expect(lifetime).toBeGreaterThan(590);
      expect(lifetime).toBeLessThanOrEqual(600);
      expect(await turn.allocate(relay.username as string, relay.credential as string)).toBe(true);
      expect(await turn.allocate(relay.username as string, `${(relay.credential as string).slice(0, -4)}AAA=`)).toBe(false);
      expect(await turn.allocate(`${Number(expiry) + 1}:${fingerprint}`, relay.credential as string)).toBe(false);
    } finally {
      peer.close();
    }
  });
});
