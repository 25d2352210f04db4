import { describe, expect, it } from "vitest";
import { Session } from "../../src/core/session.ts";
import { Sessions } from "../../src/core/sessions.ts";
import { FakeConnection } from "../helpers/core-harness.ts";

/** What a node holds on its peer channels, as Sessions tells it. */
function channels(): { held: Set<string>; log: string[]; hold(name: string): Promise<void>; release(name: string): void } {
  const held = new Set<string>();
  const log: string[] = [];
  return {
    held,
    log,
    hold(name) {
      held.add(name);
      log.push(`+${name}`);
      return Promise.resolve();
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
  void sessions.identify(session);
  return session;
}

describe("Sessions and the channels a node holds", () => {
  it("a registered peer is held by its fingerprint until it closes", () => {
    const held = channels();
    const sessions = new Sessions(held);
    const session = registered(sessions, "c1", "f1", "a1");
    expect([...held.held]).toEqual(["f1"]);
    sessions.remove(session);
    expect(held.log).toEqual(["+f1", "-f1"]);
  });

  it("a newer connection of the same key here keeps the fingerprint held when the older one closes", () => {
    const held = channels();
    const sessions = new Sessions(held);
    const older = registered(sessions, "c1", "f1", "old");
    const newer = registered(sessions, "c2", "f1", "new");
    sessions.remove(older);
    expect([...held.held]).toEqual(["f1"]);
    expect(sessions.resolve("f1")).toBe(newer);
    expect(sessions.resolve("old")).toBeUndefined();
  });

  it("the older connection closing first releases, and the newer one holds again", () => {
    const held = channels();
    const sessions = new Sessions(held);
    sessions.remove(registered(sessions, "c1", "f1", "a1"));
    registered(sessions, "c2", "f1", "a1");
    expect(held.log).toEqual(["+f1", "-f1", "+f1"]);
  });
});
