import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ProtocolError } from "../../src/protocol/errors.ts";
import type { Meta } from "../../src/protocol/requests.ts";
import type { Ban, MatchOutcome, MatchTicket, RegisterPeer, StateStore } from "../../src/backends/state-store.ts";

/**
 * The StateStore contract: every implementation (memory, cluster IPC, Redis) must pass it.
 *
 * It speaks only the interface. Each test gets a fresh store from `makeStore` and also uses
 * random fingerprints, aliases and scope names, so an implementation whose stores share a
 * backend (one Redis database) still gives independent tests; `stats` is checked by deltas.
 */
export function storeContract(name: string, makeStore: () => StateStore | Promise<StateStore>): void {
  describe(`StateStore contract: ${name}`, () => {
    let store: StateStore;
    /** This test's node id: unique, so removeNode never touches another test's peers on a shared backend. */
    let nodeId: string;

    beforeEach(async () => {
      store = await makeStore();
      nodeId = `node-${uid()}`;
    });
    afterEach(async () => {
      await store.close();
    });

    const uid = (): string => randomBytes(6).toString("hex");
    const newFingerprint = (): string => randomBytes(32).toString("hex");
    const scopeName = (label: string): string => `${label}-${uid()}`;

    const newSessionId = (): string => randomBytes(16).toString("hex");

    /** Unverified unless the test says otherwise. */
    const register = (request: Omit<RegisterPeer, "nodeId" | "verified"> & { nodeId?: string; verified?: boolean }) =>
      store.registerPeer({ nodeId, verified: false, ...request });
    const requestMatch = (ticket: Omit<MatchTicket, "sessionId"> & { sessionId?: string }) =>
      store.requestMatch({ sessionId: newSessionId(), ...ticket });

    interface TestPeer {
      fingerprint: string;
      connectionId: string;
      alias: string;
    }

    async function addPeer(
      options: { alias?: string; candidates?: string[]; meta?: Meta; fingerprint?: string; nodeId?: string; verified?: boolean } = {},
    ): Promise<TestPeer> {
      const fingerprint = options.fingerprint ?? newFingerprint();
      const connectionId = `conn-${uid()}`;
      const registration = await register({
        nodeId: options.nodeId ?? nodeId,
        fingerprint,
        connectionId,
        alias: options.alias,
        aliasCandidates: options.candidates ?? [`gen-${uid()}`],
        meta: options.meta ?? {},
        verified: options.verified ?? false,
      });
      return { fingerprint, connectionId, alias: registration.alias };
    }

    const join = (namespace: string, peer: TestPeer, appType = "", meta?: Meta) =>
      store.joinNamespace(namespace, peer.fingerprint, { appType, meta, listLimit: 50 });

    async function expectCode(promise: Promise<unknown>, code: number): Promise<void> {
      const error: unknown = await promise.then(
        () => undefined,
        (reason: unknown) => reason,
      );
      expect(error, `expected a ProtocolError with code ${code}`).toBeInstanceOf(ProtocolError);
      expect((error as ProtocolError).code).toBe(code);
    }

    const fingerprints = (peers: readonly { fingerprint: string }[]): string[] => peers.map((peer) => peer.fingerprint);

    describe("registerPeer", () => {
      it("grants a requested free alias", async () => {
        const alias = `alias-${uid()}`;
        const peer = await addPeer({ alias });
        expect(peer.alias).toBe(alias);
        expect(await store.resolvePeer(alias)).toMatchObject({ fingerprint: peer.fingerprint, alias, connectionId: peer.connectionId, nodeId });
      });

      it("refuses a requested alias held by another peer with 409 and leaves the holder untouched", async () => {
        const alias = `alias-${uid()}`;
        const holder = await addPeer({ alias });
        const intruder = newFingerprint();
        await expectCode(
          register({ fingerprint: intruder, connectionId: `conn-${uid()}`, alias, aliasCandidates: [`gen-${uid()}`], meta: {} }),
          409,
        );
        expect((await store.resolvePeer(alias))?.fingerprint).toBe(holder.fingerprint);
        expect(await store.resolvePeer(intruder)).toBeUndefined();
      });

      it("without a requested alias takes the first free candidate", async () => {
        const taken = `gen-${uid()}`;
        await addPeer({ alias: taken });
        const second = `gen-${uid()}`;
        const peer = await addPeer({ candidates: [taken, second, `gen-${uid()}`] });
        expect(peer.alias).toBe(second);
        expect((await store.resolvePeer(second))?.fingerprint).toBe(peer.fingerprint);
      });

      it("a fingerprint registered again takes over: the old connection's memberships come back as replaced", async () => {
        const namespace = scopeName("ns");
        const room = scopeName("room");
        const other = await addPeer();
        const first = await addPeer();
        await join(namespace, other);
        await join(namespace, first);
        await store.createRoom(room, first.fingerprint, 5);
        await store.joinRoom(room, other.fingerprint, 50);

        const newConnection = `conn-${uid()}`;
        const registration = await register({
          fingerprint: first.fingerprint,
          connectionId: newConnection,
          alias: undefined,
          aliasCandidates: [`gen-${uid()}`],
          meta: {},
        });
        expect(registration.replaced?.connectionId).toBe(first.connectionId);
        expect(registration.replaced?.fingerprint).toBe(first.fingerprint);
        expect([...(registration.replaced?.scopes ?? [])].sort()).toEqual([namespace, room].sort());

        expect((await store.resolvePeer(first.fingerprint))?.connectionId).toBe(newConnection);
        expect(await store.isMember(namespace, first.fingerprint)).toBe(false);
        expect(await store.isMember(room, first.fingerprint)).toBe(false);
        expect(fingerprints((await store.listMembers(namespace, other.fingerprint, 50)).peers)).toEqual([other.fingerprint]);
        expect((await store.roomInfo(room)).owner).toBe(other.fingerprint);
        // Counted once.
        expect((await store.stats()).namespaces[namespace]).toBe(1);
      });

      it("a reconnect may ask for the alias its old connection held", async () => {
        const alias = `alias-${uid()}`;
        const first = await addPeer({ alias });
        const registration = await register({
          fingerprint: first.fingerprint,
          connectionId: `conn-${uid()}`,
          alias,
          aliasCandidates: [],
          meta: {},
        });
        expect(registration.alias).toBe(alias);
        expect(registration.replaced?.connectionId).toBe(first.connectionId);
        expect((await store.resolvePeer(alias))?.fingerprint).toBe(first.fingerprint);
      });

      it("a reconnect with a new alias frees the old one", async () => {
        const oldAlias = `alias-${uid()}`;
        const first = await addPeer({ alias: oldAlias });
        const newAlias = `alias-${uid()}`;
        await register({ fingerprint: first.fingerprint, connectionId: `conn-${uid()}`, alias: newAlias, aliasCandidates: [], meta: {} });
        expect(await store.resolvePeer(oldAlias)).toBeUndefined();
        const other = await addPeer({ alias: oldAlias });
        expect(other.alias).toBe(oldAlias);
      });

      it("a reconnect does not count the peer twice", async () => {
        const before = (await store.stats()).totalPeers;
        const peer = await addPeer();
        await register({ fingerprint: peer.fingerprint, connectionId: `conn-${uid()}`, alias: undefined, aliasCandidates: [`gen-${uid()}`], meta: {} });
        expect((await store.stats()).totalPeers).toBe(before + 1);
      });
    });

    describe("verified registrations", () => {
      it("an unverified register of a verified holder's fingerprint is refused with 409 and changes nothing", async () => {
        const namespace = scopeName("ns");
        const room = scopeName("room");
        const holder = await addPeer({ verified: true, alias: `alias-${uid()}` });
        const other = await addPeer();
        await join(namespace, holder);
        await store.createRoom(room, holder.fingerprint, 5);
        await store.joinRoom(room, other.fingerprint, 50);
        await requestMatch({ namespace, fingerprint: holder.fingerprint, groupSize: 2, criteria: {} });
        const before = await store.stats();

        const intruder = `conn-${uid()}`;
        await expectCode(register({ fingerprint: holder.fingerprint, connectionId: intruder, alias: `alias-${uid()}`, aliasCandidates: [], meta: { x: 1 } }), 409);
        await expectCode(register({ fingerprint: holder.fingerprint, connectionId: intruder, alias: undefined, aliasCandidates: [`gen-${uid()}`], meta: {} }), 409);

        expect(await store.resolvePeer(holder.fingerprint)).toMatchObject({ alias: holder.alias, connectionId: holder.connectionId });
        expect(await store.isMember(namespace, holder.fingerprint)).toBe(true);
        expect((await store.roomInfo(room)).owner).toBe(holder.fingerprint);
        expect((await store.listMembers(namespace, null, 50)).peers).toEqual([
          { fingerprint: holder.fingerprint, alias: holder.alias, app_type: "", meta: {}, verified: true },
        ]);
        expect(await store.stats()).toEqual(before);
        // Its ticket still waits: a newcomer completes the group with it.
        const partner = await addPeer();
        await join(namespace, partner);
        const outcome = await requestMatch({ namespace, fingerprint: partner.fingerprint, groupSize: 2, criteria: {} });
        expect(outcome.status === "matched" ? fingerprints(outcome.peers) : []).toEqual([holder.fingerprint, partner.fingerprint]);
        // The holder's own connection leaving frees the key for anyone.
        await store.unregisterPeer(holder.fingerprint, holder.connectionId);
        expect((await register({ fingerprint: holder.fingerprint, connectionId: intruder, alias: undefined, aliasCandidates: [`gen-${uid()}`], meta: {} })).replaced).toBeUndefined();
      });

      it("a verified register takes over a verified holder and an unverified one", async () => {
        const namespace = scopeName("ns");
        const unverified = await addPeer();
        await join(namespace, unverified);
        const first = `conn-${uid()}`;
        const taken = await register({ fingerprint: unverified.fingerprint, connectionId: first, alias: undefined, aliasCandidates: [`gen-${uid()}`], meta: {}, verified: true });
        expect(taken.replaced).toEqual({ fingerprint: unverified.fingerprint, scopes: [namespace], connectionId: unverified.connectionId });
        const second = `conn-${uid()}`;
        const again = await register({ fingerprint: unverified.fingerprint, connectionId: second, alias: undefined, aliasCandidates: [`gen-${uid()}`], meta: {}, verified: true });
        expect(again.replaced).toEqual({ fingerprint: unverified.fingerprint, scopes: [], connectionId: first });
        expect(await store.resolvePeer(unverified.fingerprint)).toMatchObject({ connectionId: second });
      });

      it("every member list says whether each member is verified", async () => {
        const namespace = scopeName("ns");
        const room = scopeName("room");
        const proven = await addPeer({ verified: true });
        const plain = await addPeer();
        const entry = (peer: TestPeer, verified: boolean, appType = "") => ({ fingerprint: peer.fingerprint, alias: peer.alias, app_type: appType, meta: {}, verified });

        expect((await join(namespace, proven, "app")).member).toEqual(entry(proven, true, "app"));
        const joined = await join(namespace, plain, "app");
        expect(joined.member).toEqual(entry(plain, false, "app"));
        expect(joined.peers).toEqual([entry(proven, true, "app"), entry(plain, false, "app")]);
        expect((await store.listMembers(namespace, plain.fingerprint, 50)).peers).toEqual([entry(proven, true, "app"), entry(plain, false, "app")]);

        await store.createRoom(room, plain.fingerprint, 5);
        const inRoom = await store.joinRoom(room, proven.fingerprint, 50);
        expect(inRoom.member).toEqual(entry(proven, true));
        expect(inRoom.peers).toEqual([entry(plain, false), entry(proven, true)]);

        await requestMatch({ namespace, fingerprint: plain.fingerprint, groupSize: 2, criteria: {} });
        const matched = await requestMatch({ namespace, fingerprint: proven.fingerprint, groupSize: 2, criteria: {} });
        expect(matched).toMatchObject({ status: "matched", peers: [entry(plain, false, "app"), entry(proven, true, "app")] });
      });
    });

    describe("unregisterPeer", () => {
      it("removes the owning connection's peer and returns the scopes it left", async () => {
        const namespace = scopeName("ns");
        const room = scopeName("room");
        const other = await addPeer();
        const peer = await addPeer({ alias: `alias-${uid()}` });
        await join(namespace, other);
        await join(namespace, peer);
        await store.createRoom(room, peer.fingerprint, 4);
        const departure = await store.unregisterPeer(peer.fingerprint, peer.connectionId);
        expect(departure?.fingerprint).toBe(peer.fingerprint);
        expect([...(departure?.scopes ?? [])].sort()).toEqual([namespace, room].sort());
        expect(await store.resolvePeer(peer.fingerprint)).toBeUndefined();
        expect(await store.resolvePeer(peer.alias)).toBeUndefined();
        expect(await store.isMember(namespace, peer.fingerprint)).toBe(false);
        expect((await store.listMembers(namespace, other.fingerprint, 50)).total).toBe(1);
        // The room had only the departed peer: it is gone.
        expect(await store.scopeExists(room)).toBe(false);
      });

      it("frees the alias for someone else", async () => {
        const alias = `alias-${uid()}`;
        const peer = await addPeer({ alias });
        await store.unregisterPeer(peer.fingerprint, peer.connectionId);
        const next = await addPeer({ alias });
        expect(next.alias).toBe(alias);
      });

      it("does nothing for a connection that no longer owns the fingerprint (no ghost cleanup)", async () => {
        const namespace = scopeName("ns");
        const first = await addPeer();
        const newConnection = `conn-${uid()}`;
        const registration = await register({
          fingerprint: first.fingerprint,
          connectionId: newConnection,
          alias: undefined,
          aliasCandidates: [`gen-${uid()}`],
          meta: {},
        });
        await join(namespace, { ...first, connectionId: newConnection, alias: registration.alias });
        expect(await store.unregisterPeer(first.fingerprint, first.connectionId)).toBeUndefined();
        expect((await store.resolvePeer(first.fingerprint))?.connectionId).toBe(newConnection);
        expect((await store.resolvePeer(registration.alias))?.fingerprint).toBe(first.fingerprint);
        expect(await store.isMember(namespace, first.fingerprint)).toBe(true);

        const departure = await store.unregisterPeer(first.fingerprint, newConnection);
        expect(departure?.scopes).toEqual([namespace]);
      });

      it("returns undefined for an unknown fingerprint and when called twice", async () => {
        expect(await store.unregisterPeer(newFingerprint(), `conn-${uid()}`)).toBeUndefined();
        const peer = await addPeer();
        expect(await store.unregisterPeer(peer.fingerprint, peer.connectionId)).toBeDefined();
        expect(await store.unregisterPeer(peer.fingerprint, peer.connectionId)).toBeUndefined();
      });

      it("drops the peer's match tickets", async () => {
        const namespace = scopeName("ns");
        const [a, b, c] = [await addPeer(), await addPeer(), await addPeer()];
        for (const peer of [a, b, c]) await join(namespace, peer);
        expect(await requestMatch({ namespace, fingerprint: a.fingerprint, groupSize: 2, criteria: {} })).toEqual({ status: "waiting" });
        await store.unregisterPeer(a.fingerprint, a.connectionId);
        expect(await requestMatch({ namespace, fingerprint: b.fingerprint, groupSize: 2, criteria: {} })).toEqual({ status: "waiting" });
        const outcome = await requestMatch({ namespace, fingerprint: c.fingerprint, groupSize: 2, criteria: {} });
        expect(outcome.status).toBe("matched");
        if (outcome.status === "matched") expect(fingerprints(outcome.peers)).toEqual([b.fingerprint, c.fingerprint]);
      });
    });

    describe("resolvePeer", () => {
      it("resolves a fingerprint and an alias, and nothing else", async () => {
        const peer = await addPeer({ alias: `alias-${uid()}` });
        expect(await store.resolvePeer(peer.fingerprint)).toMatchObject({ fingerprint: peer.fingerprint, alias: peer.alias, connectionId: peer.connectionId, nodeId });
        expect((await store.resolvePeer(peer.alias))?.fingerprint).toBe(peer.fingerprint);
        expect(await store.resolvePeer(`nobody-${uid()}`)).toBeUndefined();
        expect(await store.resolvePeer(newFingerprint())).toBeUndefined();
      });

      it("prefers a fingerprint over an alias with the same text", async () => {
        const victim = await addPeer();
        // Aliases are validated at the edge so this cannot happen over the wire; the store still must not let it shadow.
        const shadow = await addPeer({ alias: victim.fingerprint });
        expect(shadow.alias).toBe(victim.fingerprint);
        expect((await store.resolvePeer(victim.fingerprint))?.fingerprint).toBe(victim.fingerprint);
      });
    });

    describe("updateMeta", () => {
      it("shallow-merges, deletes keys set to null, and shows in later member lists", async () => {
        const namespace = scopeName("ns");
        const peer = await addPeer({ meta: { a: 1, b: { deep: true } } });
        await store.updateMeta(peer.fingerprint, { b: null, c: "x" });
        await join(namespace, peer);
        expect((await store.listMembers(namespace, peer.fingerprint, 50)).peers[0]?.meta).toEqual({ a: 1, c: "x" });
        await store.updateMeta(peer.fingerprint, { a: 2 });
        expect((await store.listMembers(namespace, peer.fingerprint, 50)).peers[0]?.meta).toEqual({ a: 2, c: "x" });
      });

      it("refuses a result over 4 KB with 400 and keeps the old meta", async () => {
        const namespace = scopeName("ns");
        const peer = await addPeer({ meta: { keep: "me" } });
        await join(namespace, peer);
        await store.updateMeta(peer.fingerprint, { half: "x".repeat(2_500) });
        await expectCode(store.updateMeta(peer.fingerprint, { other: "y".repeat(2_500) }), 400);
        const meta = (await store.listMembers(namespace, peer.fingerprint, 50)).peers[0]?.meta;
        expect(meta).toEqual({ keep: "me", half: "x".repeat(2_500) });
      });
    });

    describe("joinNamespace", () => {
      it("adds the peer once, with app_type and meta, and lists members oldest first", async () => {
        const namespace = scopeName("ns");
        const a = await addPeer({ meta: { level: 1 } });
        const b = await addPeer();
        const first = await join(namespace, a, "game");
        expect(first.added).toBe(true);
        expect(first.member).toEqual({ fingerprint: a.fingerprint, alias: a.alias, app_type: "game", meta: { level: 1 }, verified: false });
        expect(first.total).toBe(1);
        const second = await join(namespace, b, "chat", { mood: "ok" });
        expect(second.added).toBe(true);
        expect(second.member).toEqual({ fingerprint: b.fingerprint, alias: b.alias, app_type: "chat", meta: { mood: "ok" }, verified: false });
        expect(second.total).toBe(2);
        expect(second.peers).toEqual([first.member, second.member]);

        const again = await join(namespace, a, "game");
        expect(again.added).toBe(false);
        expect(again.total).toBe(2);
        expect(fingerprints(again.peers)).toEqual([a.fingerprint, b.fingerprint]);
      });

      it("gives each join a seq above every earlier join, keeps it for a repeated join and gives a rejoin a higher one", async () => {
        const namespace = scopeName("ns");
        const room = scopeName("room");
        const [a, b, c] = [await addPeer(), await addPeer(), await addPeer()];
        const first = await join(namespace, a);
        const second = await join(namespace, b);
        await store.createRoom(room, a.fingerprint, 5);
        const inRoom = await store.joinRoom(room, c.fingerprint, 50);
        expect(second.seq).toBeGreaterThan(first.seq);
        expect(inRoom.seq).toBeGreaterThan(second.seq);
        expect((await join(namespace, a)).seq).toBe(first.seq);
        expect((await store.joinRoom(room, c.fingerprint, 50)).seq).toBe(inRoom.seq);
        await store.leaveScope(namespace, a.fingerprint);
        const rejoined = await join(namespace, a);
        expect(rejoined.added).toBe(true);
        expect(rejoined.seq).toBeGreaterThan(inRoom.seq);
      });

      it("lists at most listLimit peers but counts them all", async () => {
        const namespace = scopeName("ns");
        const peers = [await addPeer(), await addPeer(), await addPeer()];
        for (const peer of peers) await join(namespace, peer);
        const extra = await addPeer();
        const result = await store.joinNamespace(namespace, extra.fingerprint, { appType: "", meta: undefined, listLimit: 2 });
        expect(result.total).toBe(4);
        expect(fingerprints(result.peers)).toEqual(fingerprints(peers.slice(0, 2)));
      });

      it("refuses a name that is a room with 403", async () => {
        const room = scopeName("room");
        const owner = await addPeer();
        const peer = await addPeer();
        await store.createRoom(room, owner.fingerprint, 5);
        await expectCode(join(room, peer), 403);
        expect(await store.isMember(room, peer.fingerprint)).toBe(false);
      });
    });

    describe("leaveScope", () => {
      it("removes the member, and deletes an emptied namespace", async () => {
        const namespace = scopeName("ns");
        const a = await addPeer();
        const b = await addPeer();
        await join(namespace, a);
        await join(namespace, b);
        await store.leaveScope(namespace, a.fingerprint);
        expect(await store.isMember(namespace, a.fingerprint)).toBe(false);
        expect((await store.listMembers(namespace, b.fingerprint, 50)).total).toBe(1);
        await store.leaveScope(namespace, b.fingerprint);
        expect(await store.scopeExists(namespace)).toBe(false);
        expect((await store.stats()).namespaces[namespace]).toBeUndefined();
      });

      it("404 when not a member (unknown scope, or a scope the peer is not in)", async () => {
        const namespace = scopeName("ns");
        const a = await addPeer();
        const b = await addPeer();
        await join(namespace, a);
        await expectCode(store.leaveScope(scopeName("none"), a.fingerprint), 404);
        await expectCode(store.leaveScope(namespace, b.fingerprint), 404);
        await store.leaveScope(namespace, a.fingerprint);
        await expectCode(store.leaveScope(namespace, a.fingerprint), 404);
      });

      it("drops the peer's match ticket in that namespace only", async () => {
        const namespace = scopeName("ns");
        const otherNamespace = scopeName("ns");
        const a = await addPeer();
        await join(namespace, a);
        await join(otherNamespace, a);
        await requestMatch({ namespace, fingerprint: a.fingerprint, groupSize: 2, criteria: {} });
        await requestMatch({ namespace: otherNamespace, fingerprint: a.fingerprint, groupSize: 2, criteria: {} });
        await store.leaveScope(namespace, a.fingerprint);
        expect(await store.cancelMatch(namespace, a.fingerprint)).toBe(false);
        expect(await store.cancelMatch(otherNamespace, a.fingerprint)).toBe(true);
      });

      it("the owner leaving a room passes ownership to the earliest member; the last one deletes it", async () => {
        const room = scopeName("room");
        const [owner, second, third] = [await addPeer(), await addPeer(), await addPeer()];
        await store.createRoom(room, owner.fingerprint, 5);
        await store.joinRoom(room, second.fingerprint, 50);
        await store.joinRoom(room, third.fingerprint, 50);
        await store.leaveScope(room, owner.fingerprint);
        expect(await store.roomInfo(room)).toEqual({ room_id: room, peer_count: 2, max_size: 5, owner: second.fingerprint });
        await store.leaveScope(room, third.fingerprint);
        expect((await store.roomInfo(room)).owner).toBe(second.fingerprint);
        await store.leaveScope(room, second.fingerprint);
        await expectCode(store.roomInfo(room), 404);
        expect(await store.scopeExists(room)).toBe(false);
        // The id is free again, even for a public namespace.
        const next = await join(room, third);
        expect(next.added).toBe(true);
      });
    });

    describe("listMembers", () => {
      it("lists members oldest first up to limit, with the full total", async () => {
        const namespace = scopeName("ns");
        const peers = [await addPeer(), await addPeer(), await addPeer()];
        for (const peer of peers) await join(namespace, peer);
        const outsider = await addPeer();
        const page = await store.listMembers(namespace, outsider.fingerprint, 2);
        expect(page.total).toBe(3);
        expect(fingerprints(page.peers)).toEqual(fingerprints(peers.slice(0, 2)));
        expect(fingerprints((await store.listMembers(namespace, outsider.fingerprint, 10)).peers)).toEqual(fingerprints(peers));
      });

      it("returns an empty page for an unknown name", async () => {
        const peer = await addPeer();
        expect(await store.listMembers(scopeName("none"), peer.fingerprint, 50)).toEqual({ peers: [], total: 0 });
      });

      it("lists a room to its members only (403 otherwise)", async () => {
        const room = scopeName("room");
        const owner = await addPeer();
        const outsider = await addPeer();
        await store.createRoom(room, owner.fingerprint, 5);
        await expectCode(store.listMembers(room, outsider.fingerprint, 50), 403);
        const page = await store.listMembers(room, owner.fingerprint, 50);
        expect(page.total).toBe(1);
        expect(page.peers).toEqual([{ fingerprint: owner.fingerprint, alias: owner.alias, app_type: "", meta: {}, verified: false }]);
      });

      it("skips the offset oldest members; an offset past the end gives an empty page with the full total", async () => {
        const namespace = scopeName("ns");
        const peers: TestPeer[] = [];
        for (let index = 0; index < 5; index++) peers.push(await addPeer());
        for (const peer of peers) await join(namespace, peer);
        const page = await store.listMembers(namespace, peers[0]?.fingerprint ?? "", 2, 2);
        expect(page.total).toBe(5);
        expect(fingerprints(page.peers)).toEqual(fingerprints(peers.slice(2, 4)));
        expect(fingerprints((await store.listMembers(namespace, "", 10, 4)).peers)).toEqual(fingerprints(peers.slice(4)));
        expect(await store.listMembers(namespace, "", 10, 5)).toEqual({ peers: [], total: 5 });
        expect(fingerprints((await store.listMembers(namespace, "", 3, 0)).peers)).toEqual(fingerprints(peers.slice(0, 3)));
      });

      it("lists a room to the operator (a null requester), with an offset too", async () => {
        const room = scopeName("room");
        const owner = await addPeer();
        const guest = await addPeer();
        await store.createRoom(room, owner.fingerprint, 5);
        await store.joinRoom(room, guest.fingerprint, 50);
        expect(fingerprints((await store.listMembers(room, null, 50)).peers)).toEqual([owner.fingerprint, guest.fingerprint]);
        expect(await store.listMembers(room, null, 50, 1)).toEqual({ peers: [{ fingerprint: guest.fingerprint, alias: guest.alias, app_type: "", meta: {}, verified: false }], total: 2 });
        // The empty requester is nobody: it is shown no room.
        await expectCode(store.listMembers(room, "", 50), 403);
      });
    });

    describe("peerDetails", () => {
      it("describes a registered fingerprint: alias, connection, node, meta, and its scopes by name", async () => {
        const peer = await addPeer({ meta: { level: 3 } });
        const other = await addPeer();
        const namespace = `b-${uid()}`;
        const room = `a-${uid()}`;
        await join(namespace, peer, "game");
        await store.createRoom(room, other.fingerprint, 5);
        await store.joinRoom(room, peer.fingerprint, 50);
        expect(await store.peerDetails(peer.fingerprint)).toEqual({
          fingerprint: peer.fingerprint,
          alias: peer.alias,
          connectionId: peer.connectionId,
          nodeId,
          meta: { level: 3 },
          verified: false,
          scopes: [
            { name: room, room: true, app_type: "" },
            { name: namespace, room: false, app_type: "game" },
          ],
        });
        expect((await store.peerDetails(other.fingerprint))?.scopes).toEqual([{ name: room, room: true, app_type: "" }]);
      });

      it("says whether the registration proved possession of the key", async () => {
        const proven = await addPeer({ verified: true });
        expect((await store.peerDetails(proven.fingerprint))?.verified).toBe(true);
      });

      it("is undefined for an unknown fingerprint, an alias, and a peer that left", async () => {
        const peer = await addPeer({ alias: `alias-${uid()}` });
        expect(await store.peerDetails(newFingerprint())).toBeUndefined();
        expect(await store.peerDetails(peer.alias)).toBeUndefined();
        await store.unregisterPeer(peer.fingerprint, peer.connectionId);
        expect(await store.peerDetails(peer.fingerprint)).toBeUndefined();
      });
    });

    describe("resolveTarget", () => {
      it("resolves by fingerprint or alias when the peers share a namespace or a room", async () => {
        const [a, b] = [await addPeer(), await addPeer()];
        const namespace = scopeName("route");
        await join(namespace, a);
        await join(namespace, b);
        expect(await store.resolveTarget(a.fingerprint, b.fingerprint)).toMatchObject({ fingerprint: b.fingerprint, alias: b.alias, connectionId: b.connectionId, nodeId });
        expect((await store.resolveTarget(a.fingerprint, b.alias)).fingerprint).toBe(b.fingerprint);
        const room = scopeName("route-room");
        const [c, d] = [await addPeer(), await addPeer()];
        await store.createRoom(room, c.fingerprint, 5);
        await store.joinRoom(room, d.fingerprint, 50);
        expect((await store.resolveTarget(d.fingerprint, c.fingerprint)).fingerprint).toBe(c.fingerprint);
      });

      it("refuses an unknown target (404), the sender itself (400) and a peer it shares nothing with (403)", async () => {
        const [a, b] = [await addPeer(), await addPeer()];
        const namespace = scopeName("route");
        await join(namespace, a);
        await expectCode(store.resolveTarget(a.fingerprint, newFingerprint()), 404);
        await expectCode(store.resolveTarget(a.fingerprint, `nobody-${uid()}`), 404);
        await expectCode(store.resolveTarget(a.fingerprint, a.fingerprint), 400);
        await expectCode(store.resolveTarget(a.fingerprint, a.alias), 400);
        await expectCode(store.resolveTarget(a.fingerprint, b.fingerprint), 403);
        await join(namespace, b);
        await store.leaveScope(namespace, b.fingerprint);
        await expectCode(store.resolveTarget(a.fingerprint, b.alias), 403);
      });
    });

    describe("isMember, scopeExists, sharesScope", () => {
      it("reflect namespace membership", async () => {
        const namespace = scopeName("ns");
        const a = await addPeer();
        const b = await addPeer();
        const c = await addPeer();
        expect(await store.scopeExists(namespace)).toBe(false);
        await join(namespace, a);
        await join(namespace, b);
        expect(await store.scopeExists(namespace)).toBe(true);
        expect(await store.isMember(namespace, a.fingerprint)).toBe(true);
        expect(await store.isMember(namespace, c.fingerprint)).toBe(false);
        expect(await store.isMember(scopeName("none"), a.fingerprint)).toBe(false);
        expect(await store.sharesScope(a.fingerprint, b.fingerprint)).toBe(true);
        expect(await store.sharesScope(b.fingerprint, a.fingerprint)).toBe(true);
        expect(await store.sharesScope(a.fingerprint, c.fingerprint)).toBe(false);
        await store.leaveScope(namespace, b.fingerprint);
        expect(await store.sharesScope(a.fingerprint, b.fingerprint)).toBe(false);
      });

      it("reflect room membership", async () => {
        const room = scopeName("room");
        const owner = await addPeer();
        const guest = await addPeer();
        await store.createRoom(room, owner.fingerprint, 5);
        expect(await store.scopeExists(room)).toBe(true);
        expect(await store.sharesScope(owner.fingerprint, guest.fingerprint)).toBe(false);
        await store.joinRoom(room, guest.fingerprint, 50);
        expect(await store.isMember(room, guest.fingerprint)).toBe(true);
        expect(await store.sharesScope(owner.fingerprint, guest.fingerprint)).toBe(true);
      });

      it("sharesScope is false for unknown peers", async () => {
        const a = await addPeer();
        expect(await store.sharesScope(a.fingerprint, newFingerprint())).toBe(false);
      });
    });

    describe("createRoom", () => {
      it("creates a room owned and joined by its creator", async () => {
        const room = scopeName("room");
        const owner = await addPeer();
        expect(await store.createRoom(room, owner.fingerprint, 7)).toEqual({ room_id: room, peer_count: 1, max_size: 7, owner: owner.fingerprint });
        expect(await store.isMember(room, owner.fingerprint)).toBe(true);
        expect(await store.roomInfo(room)).toEqual({ room_id: room, peer_count: 1, max_size: 7, owner: owner.fingerprint });
      });

      it("409 when the name is taken by a room or by a namespace", async () => {
        const room = scopeName("room");
        const namespace = scopeName("ns");
        const a = await addPeer();
        const b = await addPeer();
        await store.createRoom(room, a.fingerprint, 5);
        await join(namespace, a);
        await expectCode(store.createRoom(room, b.fingerprint, 5), 409);
        await expectCode(store.createRoom(namespace, b.fingerprint, 5), 409);
        expect((await store.roomInfo(room)).owner).toBe(a.fingerprint);
        expect(await store.isMember(namespace, b.fingerprint)).toBe(false);
      });

      it("is never listed in stats", async () => {
        const room = scopeName("room");
        const owner = await addPeer();
        await store.createRoom(room, owner.fingerprint, 5);
        expect(Object.keys((await store.stats()).namespaces)).not.toContain(room);
      });
    });

    describe("joinRoom", () => {
      it("joins once and lists members oldest first", async () => {
        const room = scopeName("room");
        const owner = await addPeer();
        const guest = await addPeer();
        await store.createRoom(room, owner.fingerprint, 5);
        const result = await store.joinRoom(room, guest.fingerprint, 50);
        expect(result.added).toBe(true);
        expect(result.maxSize).toBe(5);
        expect(result.member.fingerprint).toBe(guest.fingerprint);
        expect(result.total).toBe(2);
        expect(fingerprints(result.peers)).toEqual([owner.fingerprint, guest.fingerprint]);
        const again = await store.joinRoom(room, guest.fingerprint, 50);
        expect(again.added).toBe(false);
        expect((await store.roomInfo(room)).peer_count).toBe(2);
      });

      it("404 for an unknown room or a public namespace's name", async () => {
        const namespace = scopeName("ns");
        const a = await addPeer();
        const b = await addPeer();
        await join(namespace, a);
        await expectCode(store.joinRoom(scopeName("none"), b.fingerprint, 50), 404);
        await expectCode(store.joinRoom(namespace, b.fingerprint, 50), 404);
        expect(await store.isMember(namespace, b.fingerprint)).toBe(false);
      });

      it("429 when full, while a member re-joining a full room is fine", async () => {
        const room = scopeName("room");
        const [owner, guest, late] = [await addPeer(), await addPeer(), await addPeer()];
        await store.createRoom(room, owner.fingerprint, 2);
        await store.joinRoom(room, guest.fingerprint, 50);
        await expectCode(store.joinRoom(room, late.fingerprint, 50), 429);
        expect(await store.isMember(room, late.fingerprint)).toBe(false);
        expect((await store.joinRoom(room, guest.fingerprint, 50)).added).toBe(false);
        await store.leaveScope(room, guest.fingerprint);
        expect((await store.joinRoom(room, late.fingerprint, 50)).added).toBe(true);
      });
    });

    describe("roomInfo", () => {
      it("404 for an unknown room and for a namespace", async () => {
        const namespace = scopeName("ns");
        const a = await addPeer();
        await join(namespace, a);
        await expectCode(store.roomInfo(scopeName("none")), 404);
        await expectCode(store.roomInfo(namespace), 404);
      });
    });

    describe("kick", () => {
      it("removes the target; it may join again", async () => {
        const room = scopeName("room");
        const [owner, target, bystander] = [await addPeer(), await addPeer(), await addPeer()];
        await store.createRoom(room, owner.fingerprint, 5);
        await store.joinRoom(room, target.fingerprint, 50);
        await store.joinRoom(room, bystander.fingerprint, 50);
        await store.kick(room, owner.fingerprint, target.fingerprint);
        expect(await store.isMember(room, target.fingerprint)).toBe(false);
        expect(await store.sharesScope(owner.fingerprint, target.fingerprint)).toBe(false);
        expect(await store.roomInfo(room)).toEqual({ room_id: room, peer_count: 2, max_size: 5, owner: owner.fingerprint });
        expect((await store.joinRoom(room, target.fingerprint, 50)).added).toBe(true);
      });

      it("403 for a non-owner, 404 for an unknown room or a non-member target, 400 for the owner itself", async () => {
        const room = scopeName("room");
        const [owner, member, outsider] = [await addPeer(), await addPeer(), await addPeer()];
        await store.createRoom(room, owner.fingerprint, 5);
        await store.joinRoom(room, member.fingerprint, 50);
        await expectCode(store.kick(room, member.fingerprint, owner.fingerprint), 403);
        await expectCode(store.kick(scopeName("none"), owner.fingerprint, member.fingerprint), 404);
        await expectCode(store.kick(room, owner.fingerprint, outsider.fingerprint), 404);
        await expectCode(store.kick(room, owner.fingerprint, newFingerprint()), 404);
        await expectCode(store.kick(room, owner.fingerprint, owner.fingerprint), 400);
        expect((await store.roomInfo(room)).peer_count).toBe(2);
      });

      it("leaves the target's other memberships alone", async () => {
        const room = scopeName("room");
        const namespace = scopeName("ns");
        const owner = await addPeer();
        const target = await addPeer();
        await store.createRoom(room, owner.fingerprint, 5);
        await store.joinRoom(room, target.fingerprint, 50);
        await join(namespace, target);
        await store.kick(room, owner.fingerprint, target.fingerprint);
        expect(await store.isMember(namespace, target.fingerprint)).toBe(true);
      });
    });

    describe("requestMatch and cancelMatch", () => {
      async function member(namespace: string, index = 0): Promise<TestPeer> {
        const peer = await addPeer({ meta: { n: index } });
        await join(namespace, peer, "game");
        return peer;
      }

      it("waits until the group is full, then returns it oldest ticket first with the completing ticket's session id", async () => {
        const namespace = scopeName("ns");
        const [a, b, c] = [await member(namespace, 0), await member(namespace, 1), await member(namespace, 2)];
        const peers = [a, b, c];
        const criteria = { mode: "duel", level: 3, ranked: true };
        for (const peer of [a, b]) {
          expect(await requestMatch({ namespace, fingerprint: peer.fingerprint, groupSize: 3, criteria })).toEqual({ status: "waiting" });
        }
        const sessionId = newSessionId();
        const outcome = await requestMatch({ namespace, fingerprint: c.fingerprint, groupSize: 3, criteria, sessionId });
        expect(outcome.status).toBe("matched");
        if (outcome.status !== "matched") return;
        expect(outcome.sessionId).toBe(sessionId);
        expect(outcome.peers).toEqual(peers.map((peer, index) => ({ fingerprint: peer.fingerprint, alias: peer.alias, app_type: "game", meta: { n: index }, verified: false })));
        // The matched tickets are consumed.
        for (const peer of peers) expect(await store.cancelMatch(namespace, peer.fingerprint)).toBe(false);
      });

      it("gives each group its completing ticket's session id and never reuses a ticket", async () => {
        const namespace = scopeName("ns");
        const [a, b, c, d] = [await member(namespace), await member(namespace), await member(namespace), await member(namespace)];
        const ids = new Map<TestPeer, string>();
        const request = (peer: TestPeer) => {
          const sessionId = newSessionId();
          ids.set(peer, sessionId);
          return requestMatch({ namespace, fingerprint: peer.fingerprint, groupSize: 2, criteria: {}, sessionId });
        };
        await request(a);
        const first = await request(b);
        expect(await request(c)).toEqual({ status: "waiting" });
        const second = await request(d);
        if (first.status !== "matched" || second.status !== "matched") throw new Error("expected two groups");
        expect(first.sessionId).toBe(ids.get(b));
        expect(second.sessionId).toBe(ids.get(d));
        expect(fingerprints(second.peers)).toEqual([c.fingerprint, d.fingerprint]);
      });

      it("ignores criteria key order", async () => {
        const namespace = scopeName("ns");
        const [a, b] = [await member(namespace), await member(namespace)];
        await requestMatch({ namespace, fingerprint: a.fingerprint, groupSize: 2, criteria: { x: 1, y: "b" } });
        const outcome = await requestMatch({ namespace, fingerprint: b.fingerprint, groupSize: 2, criteria: { y: "b", x: 1 } });
        expect(outcome.status).toBe("matched");
      });

      it("does not match different criteria types, values or group sizes", async () => {
        const namespace = scopeName("ns");
        const [a, b, c, d] = [await member(namespace), await member(namespace), await member(namespace), await member(namespace)];
        const ask = (peer: TestPeer, groupSize: number, criteria: Record<string, string | number | boolean>) =>
          requestMatch({ namespace, fingerprint: peer.fingerprint, groupSize, criteria });
        expect(await ask(a, 2, { level: 1 })).toEqual({ status: "waiting" });
        expect(await ask(b, 2, { level: "1" })).toEqual({ status: "waiting" });
        expect(await ask(c, 3, { level: 1 })).toEqual({ status: "waiting" });
        expect(await ask(d, 2, { level: 1, extra: true })).toEqual({ status: "waiting" });
      });

      it("does not match across namespaces", async () => {
        const first = scopeName("ns");
        const second = scopeName("ns");
        const a = await member(first);
        const b = await member(second);
        expect(await requestMatch({ namespace: first, fingerprint: a.fingerprint, groupSize: 2, criteria: {} })).toEqual({ status: "waiting" });
        expect(await requestMatch({ namespace: second, fingerprint: b.fingerprint, groupSize: 2, criteria: {} })).toEqual({ status: "waiting" });
      });

      it("403 unless the peer is a member of the namespace", async () => {
        const namespace = scopeName("ns");
        await member(namespace);
        const outsider = await addPeer();
        await expectCode(requestMatch({ namespace, fingerprint: outsider.fingerprint, groupSize: 2, criteria: {} }), 403);
        await expectCode(requestMatch({ namespace: scopeName("none"), fingerprint: outsider.fingerprint, groupSize: 2, criteria: {} }), 403);
      });

      it("a new request replaces the peer's earlier ticket: never matched twice, never with itself", async () => {
        const namespace = scopeName("ns");
        const [a, b, c] = [await member(namespace), await member(namespace), await member(namespace)];
        const ask = (peer: TestPeer, criteria: Record<string, string | number | boolean>) =>
          requestMatch({ namespace, fingerprint: peer.fingerprint, groupSize: 2, criteria });
        expect(await ask(a, {})).toEqual({ status: "waiting" });
        // Same queue again: still one ticket, so no group of a with a.
        expect(await ask(a, {})).toEqual({ status: "waiting" });
        // Moving to another queue leaves the first one.
        expect(await ask(a, { mode: "x" })).toEqual({ status: "waiting" });
        expect(await ask(b, {})).toEqual({ status: "waiting" });
        const outcome = await ask(c, { mode: "x" });
        expect(outcome.status).toBe("matched");
        if (outcome.status === "matched") expect(fingerprints(outcome.peers)).toEqual([a.fingerprint, c.fingerprint]);
      });

      it("cancelMatch removes the ticket once; the group then forms without that peer", async () => {
        const namespace = scopeName("ns");
        const [a, b, c] = [await member(namespace), await member(namespace), await member(namespace)];
        const ask = (peer: TestPeer) => requestMatch({ namespace, fingerprint: peer.fingerprint, groupSize: 2, criteria: {} });
        await ask(a);
        expect(await store.cancelMatch(namespace, a.fingerprint)).toBe(true);
        expect(await store.cancelMatch(namespace, a.fingerprint)).toBe(false);
        expect(await store.cancelMatch(scopeName("none"), a.fingerprint)).toBe(false);
        expect(await ask(b)).toEqual({ status: "waiting" });
        const outcome = await ask(c);
        if (outcome.status !== "matched") throw new Error("expected a group");
        expect(fingerprints(outcome.peers)).toEqual([b.fingerprint, c.fingerprint]);
      });
    });

    describe("requestMatch: avoid lists, open queues and group rooms", () => {
      async function member(namespace: string): Promise<TestPeer> {
        const peer = await addPeer();
        await join(namespace, peer, "game");
        return peer;
      }
      type Extra = Pick<MatchTicket, "avoid" | "open" | "groupRoom" | "criteria" | "groupSize">;
      const ask = (namespace: string, peer: TestPeer, extra: Partial<Extra> = {}) =>
        requestMatch({ namespace, fingerprint: peer.fingerprint, groupSize: 2, criteria: {}, ...extra });
      const group = (outcome: MatchOutcome): string[] => {
        if (outcome.status !== "matched") throw new Error("expected a group");
        return fingerprints(outcome.peers);
      };
      const waiting = { status: "waiting" };

      it("a newcomer skips a waiting ticket it avoids, which keeps its place for the next one", async () => {
        const namespace = scopeName("ns");
        const [a, b, c, d] = [await member(namespace), await member(namespace), await member(namespace), await member(namespace)];
        expect(await ask(namespace, a)).toEqual(waiting);
        expect(await ask(namespace, b, { avoid: [a.fingerprint] })).toEqual(waiting);
        // a is still the oldest ticket: c pairs with it, not with b.
        expect(group(await ask(namespace, c))).toEqual([a.fingerprint, c.fingerprint]);
        expect(group(await ask(namespace, d))).toEqual([b.fingerprint, d.fingerprint]);
      });

      it("is symmetric: a waiting ticket that avoids the newcomer is skipped too", async () => {
        const namespace = scopeName("ns");
        const [a, b, c] = [await member(namespace), await member(namespace), await member(namespace)];
        expect(await ask(namespace, a, { avoid: [b.fingerprint] })).toEqual(waiting);
        expect(await ask(namespace, b)).toEqual(waiting);
        expect(group(await ask(namespace, c))).toEqual([a.fingerprint, c.fingerprint]);
        expect(await store.cancelMatch(namespace, b.fingerprint)).toBe(true);
      });

      it("a third user pairs with the oldest ticket compatible with it", async () => {
        const namespace = scopeName("ns");
        const [a, b, c, d] = [await member(namespace), await member(namespace), await member(namespace), await member(namespace)];
        expect(await ask(namespace, a, { avoid: [b.fingerprint] })).toEqual(waiting);
        expect(await ask(namespace, b)).toEqual(waiting);
        expect(group(await ask(namespace, c, { avoid: [a.fingerprint] }))).toEqual([b.fingerprint, c.fingerprint]);
        expect(group(await ask(namespace, d))).toEqual([a.fingerprint, d.fingerprint]);
      });

      it("in a larger group each chosen ticket is compatible with every other, in both directions", async () => {
        const namespace = scopeName("ns");
        const [a, b, c, d, e] = [await member(namespace), await member(namespace), await member(namespace), await member(namespace), await member(namespace)];
        const three = { groupSize: 3 };
        expect(await ask(namespace, a, three)).toEqual(waiting);
        expect(await ask(namespace, b, { ...three, avoid: [a.fingerprint] })).toEqual(waiting);
        // c could join a, or b, but not both: no group yet.
        expect(await ask(namespace, c, three)).toEqual(waiting);
        // d: a, then c (b avoids a), in arrival order.
        expect(group(await ask(namespace, d, three))).toEqual([a.fingerprint, c.fingerprint, d.fingerprint]);
        expect(await ask(namespace, e, { ...three, avoid: [b.fingerprint] })).toEqual(waiting);
        expect(await store.cancelMatch(namespace, b.fingerprint)).toBe(true);
        expect(await store.cancelMatch(namespace, e.fingerprint)).toBe(true);
      });

      it("an avoid list goes with its ticket: a new ticket without one pairs with the peer it avoided", async () => {
        const namespace = scopeName("ns");
        const [a, b] = [await member(namespace), await member(namespace)];
        expect(await ask(namespace, a, { avoid: [b.fingerprint] })).toEqual(waiting);
        expect(await ask(namespace, b)).toEqual(waiting);
        expect(group(await ask(namespace, a))).toEqual([b.fingerprint, a.fingerprint]);
      });

      it("an open queue needs no membership; without open the namespace still has to be joined (403)", async () => {
        const queue = scopeName("queue");
        const [a, b] = [await addPeer({ meta: { n: 1 } }), await addPeer()];
        await expectCode(ask(queue, a), 403);
        expect(await ask(queue, a, { open: true })).toEqual(waiting);
        const outcome = await ask(queue, b, { open: true });
        expect(outcome).toMatchObject({
          status: "matched",
          peers: [
            { fingerprint: a.fingerprint, alias: a.alias, app_type: "", meta: { n: 1 }, verified: false },
            { fingerprint: b.fingerprint, alias: b.alias, app_type: "", meta: {}, verified: false },
          ],
        });
        expect(await store.isMember(queue, a.fingerprint)).toBe(false);
        expect(await store.scopeExists(queue)).toBe(false);
        expect((await store.stats()).namespaces[queue]).toBeUndefined();
      });

      it("open tickets and members' tickets of one namespace never share a queue", async () => {
        const namespace = scopeName("ns");
        const [inside, outside, other] = [await member(namespace), await addPeer(), await member(namespace)];
        expect(await ask(namespace, inside)).toEqual(waiting);
        expect(await ask(namespace, outside, { open: true })).toEqual(waiting);
        expect(group(await ask(namespace, other))).toEqual([inside.fingerprint, other.fingerprint]);
        expect(await store.cancelMatch(namespace, outside.fingerprint)).toBe(true);
      });

      it("leaving a scope of the queue's name keeps an open ticket (it never needed the membership)", async () => {
        const namespace = scopeName("ns");
        const a = await member(namespace);
        expect(await ask(namespace, a, { open: true })).toEqual(waiting);
        await store.leaveScope(namespace, a.fingerprint);
        expect(await store.cancelMatch(namespace, a.fingerprint)).toBe(true);
      });

      it("unregistering, a takeover or removeNode drops open tickets: a departed peer is never matched", async () => {
        const queue = scopeName("queue");
        const deadNode = `node-${uid()}`;
        const [gone, replaced, dead, b, c] = [await addPeer(), await addPeer(), await addPeer({ nodeId: deadNode }), await addPeer(), await addPeer()];
        // Each waits alone, then goes.
        expect(await ask(queue, gone, { open: true })).toEqual(waiting);
        await store.unregisterPeer(gone.fingerprint, gone.connectionId);
        expect(await ask(queue, replaced, { open: true })).toEqual(waiting);
        await register({ fingerprint: replaced.fingerprint, connectionId: `conn-${uid()}`, alias: undefined, aliasCandidates: [`gen-${uid()}`], meta: {} });
        expect(await ask(queue, dead, { open: true })).toEqual(waiting);
        await store.removeNode(deadNode);
        expect(await ask(queue, b, { open: true })).toEqual(waiting);
        expect(group(await ask(queue, c, { open: true }))).toEqual([b.fingerprint, c.fingerprint]);
        expect(await store.cancelMatch(queue, replaced.fingerprint)).toBe(false);
      });

      it("groupRoom: the group joins a private room owned by the oldest ticket's peer, as if created and joined", async () => {
        const queue = scopeName("queue");
        const room = scopeName("pair");
        const [a, b, outsider] = [await addPeer(), await addPeer(), await addPeer()];
        expect(await store.sharesScope(a.fingerprint, b.fingerprint)).toBe(false);
        expect(await ask(queue, a, { open: true, groupRoom: scopeName("unused") })).toEqual(waiting);
        expect(group(await ask(queue, b, { open: true, groupRoom: room }))).toEqual([a.fingerprint, b.fingerprint]);

        expect(await store.roomInfo(room)).toEqual({ room_id: room, peer_count: 2, max_size: 2, owner: a.fingerprint });
        for (const peer of [a, b]) expect(await store.isMember(room, peer.fingerprint)).toBe(true);
        expect(await store.sharesScope(a.fingerprint, b.fingerprint)).toBe(true);
        expect((await store.resolveTarget(b.fingerprint, a.fingerprint)).fingerprint).toBe(a.fingerprint);
        expect(await store.listMembers(room, b.fingerprint, 50)).toEqual({
          total: 2,
          peers: [
            { fingerprint: a.fingerprint, alias: a.alias, app_type: "", meta: {}, verified: false },
            { fingerprint: b.fingerprint, alias: b.alias, app_type: "", meta: {}, verified: false },
          ],
        });
        await expectCode(store.listMembers(room, outsider.fingerprint, 50), 403);
        await expectCode(store.joinRoom(room, outsider.fingerprint, 50), 429);
        expect(Object.keys((await store.stats()).namespaces)).not.toContain(room);

        // Each departure names the room; ownership passes on; the last one out removes it.
        expect(await store.unregisterPeer(a.fingerprint, a.connectionId)).toEqual({ fingerprint: a.fingerprint, scopes: [room] });
        expect(await store.roomInfo(room)).toEqual({ room_id: room, peer_count: 1, max_size: 2, owner: b.fingerprint });
        expect(await store.unregisterPeer(b.fingerprint, b.connectionId)).toEqual({ fingerprint: b.fingerprint, scopes: [room] });
        expect(await store.scopeExists(room)).toBe(false);
        await expectCode(store.roomInfo(room), 404);
      });

      it("groupRoom in a members' queue: the room comes beside the namespace and leaving it keeps the namespace", async () => {
        const namespace = scopeName("ns");
        const room = scopeName("pair");
        const [a, b] = [await member(namespace), await member(namespace)];
        await ask(namespace, a);
        await ask(namespace, b, { groupRoom: room });
        await store.leaveScope(room, a.fingerprint);
        expect(await store.isMember(namespace, a.fingerprint)).toBe(true);
        expect(await store.roomInfo(room)).toMatchObject({ peer_count: 1, owner: b.fingerprint });
        await store.leaveScope(room, b.fingerprint);
        expect(await store.scopeExists(room)).toBe(false);
        expect((await store.stats()).namespaces[namespace]).toBe(2);
      });

      it("409 when the group room's name is taken by a room or a namespace; nothing changes", async () => {
        const queue = scopeName("queue");
        const room = scopeName("room");
        const namespace = scopeName("ns");
        const [a, b, c, d, holder] = [await addPeer(), await addPeer(), await addPeer(), await addPeer(), await addPeer()];
        await store.createRoom(room, holder.fingerprint, 5);
        await join(namespace, holder);
        expect(await ask(queue, a, { open: true })).toEqual(waiting);
        expect(await ask(queue, b, { open: true, criteria: { mode: "x" } })).toEqual(waiting);
        await expectCode(ask(queue, b, { open: true, groupRoom: room }), 409);
        await expectCode(ask(queue, b, { open: true, groupRoom: namespace }), 409);
        expect(await store.isMember(room, a.fingerprint)).toBe(false);
        expect(await store.roomInfo(room)).toEqual({ room_id: room, peer_count: 1, max_size: 5, owner: holder.fingerprint });
        expect(await store.isMember(namespace, b.fingerprint)).toBe(false);
        // Both queues are as they were: a waits in the first, b's earlier ticket in the second.
        expect(group(await ask(queue, c, { open: true }))).toEqual([a.fingerprint, c.fingerprint]);
        expect(group(await ask(queue, d, { open: true, criteria: { mode: "x" } }))).toEqual([b.fingerprint, d.fingerprint]);
      });
    });

    describe("removeNode", () => {
      it("removes exactly that node's peers and returns what each left behind", async () => {
        const deadNode = `node-${uid()}`;
        const namespace = scopeName("ns");
        const room = scopeName("room");
        const alias = `alias-${uid()}`;
        const survivor = await addPeer();
        const ownerOnDead = await addPeer({ nodeId: deadNode, alias });
        const idleOnDead = await addPeer({ nodeId: deadNode });
        await join(namespace, ownerOnDead);
        await join(namespace, survivor);
        await store.createRoom(room, ownerOnDead.fingerprint, 5);
        await store.joinRoom(room, survivor.fingerprint, 50);
        await requestMatch({ namespace, fingerprint: ownerOnDead.fingerprint, groupSize: 2, criteria: {} });
        const before = (await store.stats()).totalPeers;

        const departures = await store.removeNode(deadNode);
        const byPeer = new Map(departures.map((departure) => [departure.fingerprint, [...departure.scopes].sort()]));
        expect(byPeer).toEqual(
          new Map([
            [ownerOnDead.fingerprint, [namespace, room].sort()],
            [idleOnDead.fingerprint, []],
          ]),
        );
        expect((await store.stats()).totalPeers).toBe(before - 2);
        expect(await store.resolvePeer(ownerOnDead.fingerprint)).toBeUndefined();
        expect(await store.resolvePeer(alias)).toBeUndefined();
        expect(await store.resolvePeer(idleOnDead.fingerprint)).toBeUndefined();
        expect((await store.resolvePeer(survivor.fingerprint))?.connectionId).toBe(survivor.connectionId);
        expect(fingerprints((await store.listMembers(namespace, survivor.fingerprint, 50)).peers)).toEqual([survivor.fingerprint]);
        expect(await store.roomInfo(room)).toMatchObject({ owner: survivor.fingerprint, peer_count: 1 });
        // The dead peer's ticket went with it.
        expect(await requestMatch({ namespace, fingerprint: survivor.fingerprint, groupSize: 2, criteria: {} })).toEqual({ status: "waiting" });
        // Its alias is free again.
        expect((await addPeer({ alias })).alias).toBe(alias);
        expect(await store.removeNode(deadNode)).toEqual([]);
      });

      it("spares a peer that reconnected onto another node", async () => {
        const deadNode = `node-${uid()}`;
        const namespace = scopeName("ns");
        const moved = await addPeer({ nodeId: deadNode });
        const connectionId = `conn-${uid()}`;
        await register({ fingerprint: moved.fingerprint, connectionId, alias: moved.alias, aliasCandidates: [], meta: {} });
        await join(namespace, moved);
        expect(await store.removeNode(deadNode)).toEqual([]);
        expect(await store.resolvePeer(moved.fingerprint)).toMatchObject({ connectionId, nodeId });
        expect(await store.isMember(namespace, moved.fingerprint)).toBe(true);
      });

      it("returns nothing for an unknown node", async () => {
        await addPeer();
        expect(await store.removeNode(`node-${uid()}`)).toEqual([]);
      });
    });

    describe("stats", () => {
      it("counts peers and public namespace members, never rooms", async () => {
        const namespace = scopeName("ns");
        const room = scopeName("room");
        const before = (await store.stats()).totalPeers;
        const a = await addPeer();
        const b = await addPeer();
        await join(namespace, a);
        await join(namespace, b);
        await store.createRoom(room, a.fingerprint, 5);
        let stats = await store.stats();
        expect(stats.totalPeers).toBe(before + 2);
        expect(stats.namespaces[namespace]).toBe(2);
        expect(stats.namespaces[room]).toBeUndefined();
        await store.unregisterPeer(b.fingerprint, b.connectionId);
        stats = await store.stats();
        expect(stats.totalPeers).toBe(before + 1);
        expect(stats.namespaces[namespace]).toBe(1);
      });

      it("counts peers by identity kind through register, takeover, unregister and removeNode", async () => {
        const deadNode = `node-${uid()}`;
        const [pigeon, p2p] = [`pigeon${uid()}`, `p2p${uid()}`];
        const nativeBefore = (await store.stats()).peersByKind[""] ?? 0;
        const first = await addPeer({ fingerprint: `${pigeon}:${newFingerprint()}` });
        const second = await addPeer({ fingerprint: `${pigeon}:${newFingerprint()}:more` });
        await addPeer({ fingerprint: `${p2p}:${uid()}`, nodeId: deadNode });
        const native = await addPeer();
        const kinds = async () => (await store.stats()).peersByKind;
        expect(await kinds()).toMatchObject({ [pigeon]: 2, [p2p]: 1, "": nativeBefore + 1 });

        // A takeover is the same peer.
        await register({ fingerprint: first.fingerprint, connectionId: `conn-${uid()}`, alias: undefined, aliasCandidates: [`gen-${uid()}`], meta: {} });
        await register({ fingerprint: native.fingerprint, connectionId: `conn-${uid()}`, alias: undefined, aliasCandidates: [`gen-${uid()}`], meta: {} });
        expect(await kinds()).toMatchObject({ [pigeon]: 2, [p2p]: 1, "": nativeBefore + 1 });
        // A stale connection's goodbye removes nothing.
        await store.unregisterPeer(first.fingerprint, first.connectionId);
        expect((await kinds())[pigeon]).toBe(2);

        await store.unregisterPeer(second.fingerprint, second.connectionId);
        expect((await kinds())[pigeon]).toBe(1);
        await store.removeNode(deadNode);
        const after = await kinds();
        expect(after[p2p]).toBeUndefined();
        expect(Object.keys(after)).not.toContain(p2p);
        expect(after[pigeon]).toBe(1);
      });
    });

    describe("bans", () => {
      const ban = (overrides: Partial<Ban> = {}): Ban => {
        const createdAt = Date.now();
        return { id: `ban-${uid()}`, kind: "fingerprint", value: newFingerprint(), reason: "", createdAt, expiresAt: createdAt + 60_000, ...overrides };
      };
      /** The bans in force at `now` among `ours` (a shared backend holds other tests' bans too). */
      const listed = async (now: number, ours: readonly Ban[]): Promise<Ban[]> => {
        const ids = new Set(ours.map((entry) => entry.id));
        return (await store.listBans(now)).filter((entry) => ids.has(entry.id));
      };

      it("adds, lists oldest first, and lifts a ban once", async () => {
        const first = ban({ kind: "ip", value: "127.0.0.2", reason: "flooding" });
        const second = ban({ createdAt: first.createdAt + 1, expiresAt: first.createdAt + 30_000 });
        await store.addBan(second, first.createdAt);
        await store.addBan(first, first.createdAt);
        expect(await listed(first.createdAt + 2, [first, second])).toEqual([first, second]);
        expect(await store.removeBan(first.id, first.createdAt + 3)).toBe(true);
        expect(await store.removeBan(first.id, first.createdAt + 3)).toBe(false);
        expect(await listed(first.createdAt + 4, [first, second])).toEqual([second]);
        expect(await store.removeBan(`ban-${uid()}`, first.createdAt)).toBe(false);
      });

      it("expires by the caller's clock: in force before expiresAt, never at or after it, and no longer liftable", async () => {
        const entry = ban();
        await store.addBan(entry, entry.createdAt);
        expect(await listed(entry.expiresAt - 1, [entry])).toEqual([entry]);
        expect(await listed(entry.expiresAt, [entry])).toEqual([]);
        expect(await store.removeBan(entry.id, entry.expiresAt)).toBe(false);
        // Forgotten for good once a later clock has seen it expired.
        expect(await listed(entry.createdAt, [entry])).toEqual([]);
      });

      it("a ban added with the id of another replaces it", async () => {
        const entry = ban();
        const replacement = { ...entry, reason: "again", expiresAt: entry.expiresAt + 1_000 };
        await store.addBan(entry, entry.createdAt);
        await store.addBan(replacement, entry.createdAt);
        expect(await listed(entry.createdAt, [entry])).toEqual([replacement]);
      });
    });

    describe("per-peer caps", () => {
      /** The message of a cap's 429 names the option and its value. */
      async function expectCap(promise: Promise<unknown>, option: string, cap: number): Promise<void> {
        const error: unknown = await promise.then(
          () => undefined,
          (reason: unknown) => reason,
        );
        expect(error).toBeInstanceOf(ProtocolError);
        expect(error).toMatchObject({ code: 429, message: `${option} (${cap}) reached` });
      }

      it("maxScopes counts namespaces and rooms: the next join, room join or room creation gets 429 and changes nothing", async () => {
        const caps = { maxScopes: 3 };
        const peer = await addPeer({ meta: { v: 1 } });
        const host = await addPeer();
        const [first, second, extra] = [scopeName("ns"), scopeName("ns"), scopeName("ns")];
        const [room, late] = [scopeName("room"), scopeName("room")];
        await store.createRoom(room, host.fingerprint, 5);
        await store.joinNamespace(first, peer.fingerprint, { appType: "", meta: undefined, listLimit: 0, caps });
        await store.joinNamespace(second, peer.fingerprint, { appType: "", meta: undefined, listLimit: 0, caps });
        expect((await store.joinRoom(room, peer.fingerprint, 0, { now: Date.now(), caps })).added).toBe(true);

        await expectCap(store.joinNamespace(extra, peer.fingerprint, { appType: "", meta: { v: 2 }, listLimit: 0, caps }), "max_scopes_per_peer", 3);
        expect(await store.scopeExists(extra)).toBe(false);
        expect((await store.peerDetails(peer.fingerprint))?.meta).toEqual({ v: 1 });
        await expectCap(store.createRoom(late, peer.fingerprint, 5, caps), "max_scopes_per_peer", 3);
        expect(await store.scopeExists(late)).toBe(false);
        const other = scopeName("room");
        await store.createRoom(other, host.fingerprint, 5);
        await expectCap(store.joinRoom(other, peer.fingerprint, 0, { now: Date.now(), caps }), "max_scopes_per_peer", 3);
        expect(await store.isMember(other, peer.fingerprint)).toBe(false);
        expect((await store.peerDetails(peer.fingerprint))?.scopes.map((scope) => scope.name).sort()).toEqual([first, second, room].sort());

        // A scope it is in passes again; leaving one makes room for another.
        expect((await store.joinNamespace(first, peer.fingerprint, { appType: "", meta: undefined, listLimit: 0, caps })).added).toBe(false);
        expect((await store.joinRoom(room, peer.fingerprint, 0, { now: Date.now(), caps })).added).toBe(false);
        await store.leaveScope(second, peer.fingerprint);
        expect((await store.joinNamespace(extra, peer.fingerprint, { appType: "", meta: undefined, listLimit: 0, caps })).added).toBe(true);
        // Without caps nothing is counted (a membership restored after a loss).
        expect((await store.joinRoom(other, peer.fingerprint, 0)).added).toBe(true);
      });

      it("maxRooms counts the rooms a peer owns, created or passed on to it; leaving one makes room", async () => {
        const caps = { maxRooms: 2, maxScopes: 10 };
        const peer = await addPeer();
        const founder = await addPeer();
        const [own, inherited, guestOnly, extra] = [scopeName("room"), scopeName("room"), scopeName("room"), scopeName("room")];
        await store.createRoom(own, peer.fingerprint, 5, caps);
        await store.createRoom(guestOnly, founder.fingerprint, 5);
        await store.joinRoom(guestOnly, peer.fingerprint, 0, { now: Date.now(), caps });
        // Being a member of a room someone else owns does not count.
        await store.createRoom(inherited, founder.fingerprint, 5);
        await store.joinRoom(inherited, peer.fingerprint, 0, { now: Date.now(), caps });
        expect((await store.createRoom(extra, peer.fingerprint, 5, caps)).owner).toBe(peer.fingerprint);
        await store.leaveScope(extra, peer.fingerprint);
        // The founder leaves `inherited`: it passes to the peer, who owns two rooms again.
        await store.leaveScope(inherited, founder.fingerprint);
        expect((await store.roomInfo(inherited)).owner).toBe(peer.fingerprint);
        await expectCap(store.createRoom(extra, peer.fingerprint, 5, caps), "max_rooms_per_peer", 2);
        expect(await store.scopeExists(extra)).toBe(false);
        // Other peers are not affected by its count.
        expect((await store.createRoom(extra, founder.fingerprint, 5, caps)).owner).toBe(founder.fingerprint);
        await store.leaveScope(own, peer.fingerprint);
        const again = scopeName("room");
        expect((await store.createRoom(again, peer.fingerprint, 5, caps)).owner).toBe(peer.fingerprint);
      });

      it("maxTickets counts waiting tickets: one more that would wait gets 429; a replacement, a ticket that completes a group, or a slot freed by a match, a cancel or a leave passes", async () => {
        const caps = { maxTickets: 2 };
        const [first, second, third] = [scopeName("ns"), scopeName("ns"), scopeName("ns")];
        const peer = await addPeer();
        const partner = await addPeer();
        for (const namespace of [first, second, third]) {
          await join(namespace, peer);
          await join(namespace, partner);
        }
        const ticket = (namespace: string, criteria = {}) => requestMatch({ namespace, fingerprint: peer.fingerprint, groupSize: 2, criteria, caps });
        expect(await ticket(first)).toEqual({ status: "waiting" });
        expect(await ticket(second)).toEqual({ status: "waiting" });
        await expectCap(ticket(third), "max_tickets_per_peer", 2);
        // Nothing changed: no ticket in the third namespace, the others still wait.
        expect(await store.cancelMatch(third, peer.fingerprint)).toBe(false);
        // Replacing its ticket in a namespace where it waits already is no new ticket.
        expect(await ticket(first, { mode: "duel" })).toEqual({ status: "waiting" });
        // A ticket that completes a group never waits.
        expect(await requestMatch({ namespace: third, fingerprint: partner.fingerprint, groupSize: 2, criteria: { mode: "x" } })).toEqual({ status: "waiting" });
        expect(await ticket(third, { mode: "x" })).toMatchObject({ status: "matched" });
        await expectCap(ticket(third), "max_tickets_per_peer", 2);
        // Matched by someone else's request: its ticket is gone, the slot free.
        expect(await requestMatch({ namespace: first, fingerprint: partner.fingerprint, groupSize: 2, criteria: { mode: "duel" } })).toMatchObject({ status: "matched" });
        expect(await ticket(third)).toEqual({ status: "waiting" });
        await expectCap(ticket(first), "max_tickets_per_peer", 2);
        expect(await store.cancelMatch(second, peer.fingerprint)).toBe(true);
        expect(await ticket(first)).toEqual({ status: "waiting" });
        await store.leaveScope(third, peer.fingerprint);
        expect(await ticket(second)).toEqual({ status: "waiting" });
      });
    });

    describe("kick bans", () => {
      async function kickedRoom(): Promise<{ room: string; owner: TestPeer; target: TestPeer; now: number }> {
        const room = scopeName("room");
        const [owner, target] = [await addPeer(), await addPeer()];
        await store.createRoom(room, owner.fingerprint, 5);
        await store.joinRoom(room, target.fingerprint, 0);
        const now = Date.now();
        await store.kick(room, owner.fingerprint, target.fingerprint, { now, until: now + 60_000 });
        return { room, owner, target, now };
      }

      it("refuses the kicked peer's joinRoom with 403 while in force by the caller's clock, and admits it at the ban's end", async () => {
        const { room, owner, target, now } = await kickedRoom();
        await expectCode(store.joinRoom(room, target.fingerprint, 50, { now: now + 1 }), 403);
        await expectCode(store.joinRoom(room, target.fingerprint, 50, { now: now + 59_999 }), 403);
        expect(await store.isMember(room, target.fingerprint)).toBe(false);
        expect((await store.roomInfo(room)).peer_count).toBe(1);
        // Another peer, and the kicked peer's other rooms, are not concerned.
        const other = await addPeer();
        expect((await store.joinRoom(room, other.fingerprint, 50, { now: now + 1 })).added).toBe(true);
        const elsewhere = scopeName("room");
        await store.createRoom(elsewhere, owner.fingerprint, 5);
        expect((await store.joinRoom(elsewhere, target.fingerprint, 50, { now: now + 1 })).added).toBe(true);
        const back = await store.joinRoom(room, target.fingerprint, 50, { now: now + 60_000 });
        expect(back.added).toBe(true);
        expect(fingerprints(back.peers)).toEqual([owner.fingerprint, other.fingerprint, target.fingerprint]);
      });

      it("outlives the kicked peer's connection: a takeover or a new registration is still refused", async () => {
        const { room, target, now } = await kickedRoom();
        await store.unregisterPeer(target.fingerprint, target.connectionId);
        await register({ fingerprint: target.fingerprint, connectionId: `conn-${uid()}`, alias: undefined, aliasCandidates: [`gen-${uid()}`], meta: {} });
        await expectCode(store.joinRoom(room, target.fingerprint, 50, { now: now + 1 }), 403);
      });

      it("a kick without a ban, or one already over, lets the peer join again at once; a join without admission is never refused", async () => {
        const room = scopeName("room");
        const [owner, a, b] = [await addPeer(), await addPeer(), await addPeer()];
        await store.createRoom(room, owner.fingerprint, 5);
        await store.joinRoom(room, a.fingerprint, 0);
        await store.joinRoom(room, b.fingerprint, 0);
        const now = Date.now();
        await store.kick(room, owner.fingerprint, a.fingerprint);
        await store.kick(room, owner.fingerprint, b.fingerprint, { now, until: now });
        expect((await store.joinRoom(room, a.fingerprint, 0, { now })).added).toBe(true);
        expect((await store.joinRoom(room, b.fingerprint, 0, { now })).added).toBe(true);
        const { room: banned, target } = await kickedRoom();
        expect((await store.joinRoom(banned, target.fingerprint, 0)).added).toBe(true);
      });

      it("goes with the room: a room that empties is gone, and one created again under its name admits the peer", async () => {
        const { room, owner, target, now } = await kickedRoom();
        await store.leaveScope(room, owner.fingerprint);
        expect(await store.scopeExists(room)).toBe(false);
        const founder = await addPeer();
        await store.createRoom(room, founder.fingerprint, 5);
        expect((await store.joinRoom(room, target.fingerprint, 50, { now: now + 1 })).added).toBe(true);
      });

      it("each kick keeps its own end; later kicks forget expired bans without touching those in force", async () => {
        const room = scopeName("room");
        const [owner, early, late, third] = [await addPeer(), await addPeer(), await addPeer(), await addPeer()];
        await store.createRoom(room, owner.fingerprint, 5);
        for (const peer of [early, late, third]) await store.joinRoom(room, peer.fingerprint, 0);
        const now = Date.now();
        await store.kick(room, owner.fingerprint, early.fingerprint, { now, until: now + 1_000 });
        await store.kick(room, owner.fingerprint, late.fingerprint, { now: now + 500, until: now + 5_000 });
        await store.kick(room, owner.fingerprint, third.fingerprint, { now: now + 2_000, until: now + 3_000 });
        expect((await store.joinRoom(room, early.fingerprint, 0, { now: now + 2_000 })).added).toBe(true);
        await expectCode(store.joinRoom(room, late.fingerprint, 0, { now: now + 2_000 }), 403);
        await expectCode(store.joinRoom(room, third.fingerprint, 0, { now: now + 2_999 }), 403);
        expect((await store.joinRoom(room, third.fingerprint, 0, { now: now + 3_000 })).added).toBe(true);
        await expectCode(store.joinRoom(room, late.fingerprint, 0, { now: now + 4_999 }), 403);
      });
    });

    describe("session resume", () => {
      const now = 1_700_000_000_000;
      const grace = 15_000;

      /** A peer registered with a resume hash, joined to a namespace, its own room and a waiting ticket. */
      async function resumable(options: { verified?: boolean } = {}) {
        const fingerprint = newFingerprint();
        const connectionId = `conn-${uid()}`;
        const resumeHash = `hash-${uid()}`;
        const { alias } = await register({
          fingerprint,
          connectionId,
          alias: undefined,
          aliasCandidates: [`gen-${uid()}`],
          meta: { level: 3 },
          verified: options.verified ?? false,
          resumeHash,
        });
        const namespace = scopeName("ns");
        const room = scopeName("room");
        await store.joinNamespace(namespace, fingerprint, { appType: "game", meta: undefined, listLimit: 0 });
        await store.createRoom(room, fingerprint, 6);
        await requestMatch({ namespace, fingerprint, groupSize: 2, criteria: { mode: "duel" } });
        return { fingerprint, connectionId, alias, resumeHash, namespace, room };
      }
      const resumeOf = (peer: { fingerprint: string; resumeHash: string }, at = now, extra: { verified?: boolean; nodeId?: string } = {}) =>
        store.resumePeer({
          fingerprint: peer.fingerprint,
          resumeHash: peer.resumeHash,
          connectionId: `conn-${uid()}`,
          nodeId: extra.nodeId ?? nodeId,
          verified: extra.verified ?? false,
          now: at,
        });

      it("suspendPeer: only the holding connection, once; the peer stays registered, in its scopes and queues, and resolves as suspended", async () => {
        const peer = await resumable();
        const partner = await addPeer();
        await join(peer.namespace, partner);
        expect(await store.suspendPeer(peer.fingerprint, "conn-other", now + grace)).toBe(false);
        expect(await store.suspendPeer(newFingerprint(), peer.connectionId, now + grace)).toBe(false);
        expect(await store.resolvePeer(peer.fingerprint)).not.toHaveProperty("suspended");
        expect(await store.suspendPeer(peer.fingerprint, peer.connectionId, now + grace)).toBe(true);
        expect(await store.suspendPeer(peer.fingerprint, peer.connectionId, now + grace)).toBe(false);
        expect(await store.resolvePeer(peer.alias)).toEqual({ fingerprint: peer.fingerprint, alias: peer.alias, connectionId: peer.connectionId, nodeId, suspended: true });
        expect(await store.resolveTarget(partner.fingerprint, peer.fingerprint)).toMatchObject({ fingerprint: peer.fingerprint, suspended: true });
        expect(await store.isMember(peer.namespace, peer.fingerprint)).toBe(true);
        expect(await store.roomInfo(peer.room)).toMatchObject({ owner: peer.fingerprint, peer_count: 1 });
        // Its ticket still waits: the next compatible one completes a group with it.
        const matched = await requestMatch({ namespace: peer.namespace, fingerprint: partner.fingerprint, groupSize: 2, criteria: { mode: "duel" } });
        expect(matched.status === "matched" ? fingerprints(matched.peers) : []).toEqual([peer.fingerprint, partner.fingerprint]);
      });

      it("removeNode spares a suspended peer: its grace runs out wherever it started", async () => {
        const deadNode = `node-${uid()}`;
        const fingerprint = newFingerprint();
        const connectionId = `conn-${uid()}`;
        await register({ nodeId: deadNode, fingerprint, connectionId, alias: undefined, aliasCandidates: [`gen-${uid()}`], meta: {}, resumeHash: "h" });
        expect(await store.suspendPeer(fingerprint, connectionId, now + grace)).toBe(true);
        expect(await store.removeNode(deadNode)).toEqual([]);
        expect(await store.resolvePeer(fingerprint)).toMatchObject({ suspended: true });
      });

      it("resumePeer with the right hash within the grace: the new connection gets the peer whole, with its buffer, once", async () => {
        const peer = await resumable();
        await store.suspendPeer(peer.fingerprint, peer.connectionId, now + grace);
        expect(await store.bufferMessage([peer.fingerprint], "signal\t{\"n\":1}", 64)).toEqual([peer.fingerprint]);
        expect(await store.bufferMessage([peer.fingerprint], "kick\t{\"n\":2}", 64)).toEqual([peer.fingerprint]);
        const otherNode = `node-${uid()}`;
        const resumed = await resumeOf(peer, now + grace - 1, { nodeId: otherNode });
        expect(resumed).toBeDefined();
        expect(resumed).not.toHaveProperty("replaced");
        expect(resumed?.alias).toBe(peer.alias);
        expect(resumed?.meta).toEqual({ level: 3 });
        expect(resumed?.messages).toEqual(['signal\t{"n":1}', 'kick\t{"n":2}']);
        expect(resumed?.missed).toBe(0);
        const scopes = [...(resumed?.scopes ?? [])].sort((a, b) => (a.name < b.name ? -1 : 1));
        const expected = [
          { name: peer.namespace, appType: "game", roomSize: undefined },
          { name: peer.room, appType: "", roomSize: 6 },
        ].sort((a, b) => (a.name < b.name ? -1 : 1));
        expect(scopes).toEqual(expected);
        const record = await store.resolvePeer(peer.fingerprint);
        expect(record).toMatchObject({ alias: peer.alias, nodeId: otherNode });
        expect(record).not.toHaveProperty("suspended");
        // Live again: nothing is buffered for it, and its next suspension starts empty.
        expect(await store.bufferMessage([peer.fingerprint], "signal\t{}", 64)).toEqual([]);
        expect(await store.suspendPeer(peer.fingerprint, record?.connectionId ?? "", now + 2 * grace)).toBe(true);
        expect((await resumeOf(peer, now + grace))?.messages).toEqual([]);
      });

      it("resumePeer of a live peer takes it over: the old connection is named as replaced, the memberships stay", async () => {
        const peer = await resumable();
        const resumed = await resumeOf(peer, now, { nodeId: `node-${uid()}` });
        expect(resumed?.replaced).toBe(peer.connectionId);
        expect(await store.isMember(peer.namespace, peer.fingerprint)).toBe(true);
        // The peer is no longer the old node's.
        expect(await store.removeNode(nodeId)).toEqual([]);
        expect(await store.resolvePeer(peer.fingerprint)).toBeDefined();
      });

      it("resumePeer is undefined, and changes nothing, for another hash, no hash, an unknown key or a grace that ended", async () => {
        const peer = await resumable();
        await store.suspendPeer(peer.fingerprint, peer.connectionId, now + grace);
        expect(await resumeOf({ ...peer, resumeHash: "hash-other" })).toBeUndefined();
        expect(await resumeOf({ ...peer, resumeHash: "" })).toBeUndefined();
        expect(await resumeOf({ ...peer, fingerprint: newFingerprint() })).toBeUndefined();
        expect(await resumeOf(peer, now + grace)).toBeUndefined();
        expect(await store.resolvePeer(peer.fingerprint)).toMatchObject({ connectionId: peer.connectionId, suspended: true });
        // A registration given no hash cannot be resumed at all.
        const plain = await addPeer();
        expect(await resumeOf({ fingerprint: plain.fingerprint, resumeHash: "" })).toBeUndefined();
        expect(await store.resolvePeer(plain.fingerprint)).toMatchObject({ connectionId: plain.connectionId });
      });

      it("resumePeer of a verified peer needs a verified request (409, nothing changes); a verified one may resume any", async () => {
        const proven = await resumable({ verified: true });
        await store.suspendPeer(proven.fingerprint, proven.connectionId, now + grace);
        await expectCode(resumeOf(proven), 409);
        expect(await store.resolvePeer(proven.fingerprint)).toMatchObject({ suspended: true });
        expect(await resumeOf(proven, now, { verified: true })).toBeDefined();
        const plain = await resumable();
        await store.suspendPeer(plain.fingerprint, plain.connectionId, now + grace);
        expect(await resumeOf(plain, now, { verified: true })).toBeDefined();
        expect((await store.listMembers(plain.namespace, plain.fingerprint, 10)).peers[0]?.verified).toBe(true);
      });

      it("bufferMessage appends to suspended targets only, in order, and keeps the newest `limit`, counting the rest as missed", async () => {
        const a = await resumable();
        const b = await resumable();
        const live = await addPeer();
        await store.suspendPeer(a.fingerprint, a.connectionId, now + grace);
        await store.suspendPeer(b.fingerprint, b.connectionId, now + grace);
        expect(await store.bufferMessage([live.fingerprint, a.fingerprint, newFingerprint(), b.fingerprint], "m\t0", 3)).toEqual([a.fingerprint, b.fingerprint]);
        for (let index = 1; index <= 4; index++) await store.bufferMessage([a.fingerprint], `m\t${index}`, 3);
        await store.bufferMessage([b.fingerprint], "m\tdropped", 0);
        expect(await store.bufferMessage([], "m\tnone", 3)).toEqual([]);
        const resumedA = await resumeOf(a);
        expect(resumedA?.messages).toEqual(["m\t2", "m\t3", "m\t4"]);
        expect(resumedA?.missed).toBe(2);
        const resumedB = await resumeOf(b);
        expect(resumedB?.messages).toEqual([]);
        expect(resumedB?.missed).toBe(2);
      });

      it("expireSuspended departs the peers whose grace ended by `now`, once, as an unregister would", async () => {
        const ended = await resumable();
        const later = await resumable();
        const member = await addPeer();
        await join(ended.namespace, member);
        await store.joinRoom(ended.room, member.fingerprint, 0);
        await store.suspendPeer(ended.fingerprint, ended.connectionId, now + 1_000);
        await store.suspendPeer(later.fingerprint, later.connectionId, now + 5_000);
        const before = (await store.stats()).totalPeers;
        const ours = <T extends { fingerprint: string }>(departures: T[]): T[] =>
          departures.filter((d) => d.fingerprint === ended.fingerprint || d.fingerprint === later.fingerprint);

        expect(ours(await store.expireSuspended(now + 999))).toEqual([]);
        const departures = ours(await store.expireSuspended(now + 1_000));
        expect(departures.map((d) => ({ fingerprint: d.fingerprint, scopes: [...d.scopes].sort() }))).toEqual([
          { fingerprint: ended.fingerprint, scopes: [ended.namespace, ended.room].sort() },
        ]);
        expect(ours(await store.expireSuspended(now + 1_000))).toEqual([]);
        expect((await store.stats()).totalPeers).toBe(before - 1);
        expect(await store.resolvePeer(ended.fingerprint)).toBeUndefined();
        expect(await store.resolvePeer(ended.alias)).toBeUndefined();
        expect(await store.roomInfo(ended.room)).toMatchObject({ owner: member.fingerprint, peer_count: 1 });
        expect(fingerprints((await store.listMembers(ended.namespace, member.fingerprint, 10)).peers)).toEqual([member.fingerprint]);
        // Its ticket went with it.
        expect(await requestMatch({ namespace: ended.namespace, fingerprint: member.fingerprint, groupSize: 2, criteria: { mode: "duel" } })).toEqual({ status: "waiting" });
        expect(await resumeOf(ended, now)).toBeUndefined();
        // A peer resumed in time is not expired later.
        expect(await resumeOf(later, now + 4_000)).toBeDefined();
        expect(ours(await store.expireSuspended(now + 10_000))).toEqual([]);
        expect(await store.resolvePeer(later.fingerprint)).toBeDefined();
      });

      it("a peer resumed and suspended again departs when its second grace ends, not its first", async () => {
        const peer = await resumable();
        await store.suspendPeer(peer.fingerprint, peer.connectionId, now + 1_000);
        expect(await resumeOf(peer, now + 500)).toBeDefined();
        const connectionId = (await store.resolvePeer(peer.fingerprint))?.connectionId as string;
        expect(await store.suspendPeer(peer.fingerprint, connectionId, now + 3_000)).toBe(true);

        expect(mine(await store.expireSuspended(now + 1_000), peer.fingerprint)).toEqual([]);
        expect(await store.resolvePeer(peer.fingerprint)).toMatchObject({ suspended: true });
        expect(mine(await store.expireSuspended(now + 3_000), peer.fingerprint).map((d) => d.fingerprint)).toEqual([peer.fingerprint]);
        expect(await store.resolvePeer(peer.fingerprint)).toBeUndefined();
      });

      it("expires many suspensions ended at different times, each once, those ended first", async () => {
        const peers = await Promise.all(Array.from({ length: 20 }, () => resumable()));
        // Suspended in an order that is not the order of their ends.
        const ends = peers.map((_, index) => now + 1_000 + ((index * 7) % 20) * 100);
        for (const [index, peer] of peers.entries()) await store.suspendPeer(peer.fingerprint, peer.connectionId, ends[index] as number);
        const ours = (departures: { fingerprint: string }[]) => departures.map((d) => d.fingerprint).filter((fp) => peers.some((p) => p.fingerprint === fp));
        const endedBy = (time: number) => peers.filter((_, index) => (ends[index] as number) <= time).map((p) => p.fingerprint);

        const first = ours(await store.expireSuspended(now + 1_950));
        expect([...first].sort()).toEqual(endedBy(now + 1_950).sort());
        const rest = ours(await store.expireSuspended(now + 10_000));
        expect([...rest].sort()).toEqual(peers.map((p) => p.fingerprint).filter((fp) => !first.includes(fp)).sort());
        expect(ours(await store.expireSuspended(now + 20_000))).toEqual([]);
      });

      it("a fresh registration of a suspended key takes over: the old memberships come back as replaced, its buffer is gone", async () => {
        const peer = await resumable();
        await store.suspendPeer(peer.fingerprint, peer.connectionId, now + grace);
        await store.bufferMessage([peer.fingerprint], "m\told", 64);
        const connectionId = `conn-${uid()}`;
        const registration = await register({ fingerprint: peer.fingerprint, connectionId, alias: undefined, aliasCandidates: [`gen-${uid()}`], meta: {}, resumeHash: "hash-new" });
        expect(registration.replaced?.connectionId).toBe(peer.connectionId);
        expect([...(registration.replaced?.scopes ?? [])].sort()).toEqual([peer.namespace, peer.room].sort());
        expect(await store.resolvePeer(peer.fingerprint)).not.toHaveProperty("suspended");
        expect(await resumeOf(peer)).toBeUndefined();
        expect(await store.suspendPeer(peer.fingerprint, connectionId, now + grace)).toBe(true);
        expect((await resumeOf({ fingerprint: peer.fingerprint, resumeHash: "hash-new" }))?.messages).toEqual([]);
        expect(mine(await store.expireSuspended(now + 2 * grace), peer.fingerprint)).toEqual([]);
      });

      it("unregisterPeer removes a suspended peer for its connection", async () => {
        const peer = await resumable();
        await store.suspendPeer(peer.fingerprint, peer.connectionId, now + grace);
        const departure = await store.unregisterPeer(peer.fingerprint, peer.connectionId);
        expect([...(departure?.scopes ?? [])].sort()).toEqual([peer.namespace, peer.room].sort());
        expect(await store.resolvePeer(peer.fingerprint)).toBeUndefined();
        expect(mine(await store.expireSuspended(now + 2 * grace), peer.fingerprint)).toEqual([]);
      });

      const mine = (departures: { fingerprint: string }[], fingerprint: string) => departures.filter((d) => d.fingerprint === fingerprint);
    });

    describe("close", () => {
      it("resolves, and can be called again", async () => {
        await addPeer();
        await expect(store.close()).resolves.toBeUndefined();
        await expect(store.close()).resolves.toBeUndefined();
      });
    });
  });
}
