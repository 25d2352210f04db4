import { describe, expect, it } from "vitest";
import { Session } from "../../src/core/session.ts";
import { Sessions } from "../../src/core/sessions.ts";
import { FakeConnection } from "../helpers/core-harness.ts";

/** What a node holds on its peer channels, as Sessions tells it. */
function channels(): { held: Set<string>; log: string[]; hold(name: string): void; release(name: string): void } {
  const held = new Set<string>();
  const log: string[] = [];
  return {
    held,
    log,
    hold(name) {
      held.add(name);
      log.push(`+${name}`);
    },
    release(name) {
      held.delete(name);
      log.push(`-${name}`);
    },
  };
}

function registered(sessions: Sessions, id: string, fingerprint: string, alias: string): Session {
  const session = new Session(new FakeConnection(id));
  session.fingerprint = fingerprint;
  session.alias = alias;
  sessions.add(session);
  sessions.identify(session);
  return session;
}

describe("Sessions and the channels a node holds", () => {
  it("a registered peer is held by fingerprint and alias until it closes", () => {
    const held = channels();
    const sessions = new Sessions(held);
    const session = registered(sessions, "c1", "f1", "a1");
    expect([...held.held].sort()).toEqual(["a1", "f1"]);
    sessions.remove(session);
    expect(held.held.size).toBe(0);
  });

  it("a newer connection of the same key here keeps the fingerprint held when the older one closes; only the old alias goes", () => {
    const held = channels();
    const sessions = new Sessions(held);
    const older = registered(sessions, "c1", "f1", "old");
    registered(sessions, "c2", "f1", "new");
    sessions.remove(older);
    expect([...held.held].sort()).toEqual(["f1", "new"]);
  });

  it("a dialect identity that is its own alias is held once and released once", () => {
    const held = channels();
    const sessions = new Sessions(held);
    const session = registered(sessions, "c1", "pp:peer", "pp:peer");
    sessions.remove(session);
    expect(held.log).toEqual(["+pp:peer", "-pp:peer"]);
  });

  it("a renamed peer (a new alias after a state loss) moves from the old alias to the new one", () => {
    const held = channels();
    const sessions = new Sessions(held);
    const session = registered(sessions, "c1", "f1", "a1");
    sessions.rename(session, "a2");
    expect([...held.held].sort()).toEqual(["a2", "f1"]);
    expect(sessions.resolve("a2")).toBe(session);
    expect(sessions.resolve("a1")).toBeUndefined();
  });
});
