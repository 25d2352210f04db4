import { describe, expect, it } from "vitest";
import { sha256 } from "../helpers/peers.ts";
import { useServer } from "../helpers/use-server.ts";

// A closed peer departs at once here (resume_grace 0): resume has its own tests (resume.test.ts).
const fixture = useServer({ config: { resume_grace: 0 } });

describe("one world across transports", () => {
  it("a raw-ws peer and a Socket.IO peer see each other and signal both ways", async () => {
    const a = await fixture.peer("ws");
    const b = await fixture.peer("sio");
    expect(a.fingerprint).toBe(sha256(a.publicKey));
    expect(b.alias).toMatch(/^[a-z]+-[a-z]+-\d\d$/);
    await a.join("lobby");
    const list = await b.join("lobby", { app_type: "game" });
    expect(list.payload?.["total"]).toBe(2);
    const joined = await a.next("peer_joined");
    expect(joined.from).toBe(b.fingerprint);
    expect(joined.payload?.["app_type"]).toBe("game");

    a.send("signal", { to: b.fingerprint, payload: { signal_type: "offer", sdp: "v=0" } });
    const offer = await b.next("signal");
    expect(offer).toMatchObject({ from: a.fingerprint, to: b.fingerprint, payload: { signal_type: "offer", sdp: "v=0" } });
    expect(typeof offer.ts).toBe("number");

    b.send("signal", { to: a.alias, payload: { signal_type: "answer", sdp: "v=1" } });
    const answer = await a.next("signal");
    expect(answer).toMatchObject({ type: "signal", from: b.fingerprint, to: a.fingerprint });

    b.send("broadcast", { payload: { namespace: "lobby", data: { hello: 1 } } });
    const cast = await a.next("broadcast");
    expect(cast).toMatchObject({ from: b.fingerprint, namespace: "lobby", payload: { namespace: "lobby", data: { hello: 1 } } });

    b.close();
    const left = await a.next("peer_left");
    expect(left).toMatchObject({ from: b.fingerprint, namespace: "lobby" });
  });
});
