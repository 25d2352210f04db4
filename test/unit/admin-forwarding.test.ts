import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AdminForwarding } from "../../src/cluster/admin-forwarding.ts";
import type { PrimaryToWorker } from "../../src/protocol/cluster-messages.ts";

/** A worker's end of the channel: what the primary sent it. */
const worker = () => {
  const sent: PrimaryToWorker[] = [];
  return { sent, send: (message: PrimaryToWorker) => sent.push(message) };
};
const request = { method: "GET", path: "/admin/bans", body: "" };

describe("AdminForwarding", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("sends each request to the next ready worker with an id of its own, and answers with that id's response", async () => {
    const [a, b] = [worker(), worker()];
    const forwarding = new AdminForwarding({ workers: () => [a, b], timeoutMs: 1_000 });
    const first = forwarding.forward(request);
    const second = forwarding.forward({ method: "POST", path: "/admin/bans", body: '{"ip":"10.0.0.1"}' });
    expect(a.sent).toEqual([{ ps: "admin-request", id: 1, ...request }]);
    expect(b.sent).toEqual([{ ps: "admin-request", id: 2, method: "POST", path: "/admin/bans", body: '{"ip":"10.0.0.1"}' }]);
    forwarding.receive({ ps: "admin-response", id: 2, status: 201, body: '{"id":"x"}' });
    forwarding.receive({ ps: "admin-response", id: 1, status: 405, body: "{}", allow: "GET, POST" });
    expect(await second).toEqual({ status: 201, body: '{"id":"x"}' });
    expect(await first).toEqual({ status: 405, body: "{}", allow: "GET, POST" });
  });

  it("answers 503 when no worker answers in time, and drops the late answer", async () => {
    const a = worker();
    const forwarding = new AdminForwarding({ workers: () => [a], timeoutMs: 1_000 });
    const pending = forwarding.forward(request);
    vi.advanceTimersByTime(1_000);
    const answer = await pending;
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body)).toEqual({ error: "no worker answered within 1000 ms" });
    expect(() => forwarding.receive({ ps: "admin-response", id: 1, status: 200, body: "{}" })).not.toThrow();
  });

  it("answers 503 at once without a ready worker, and to every request still waiting when closed", async () => {
    const forwarding = new AdminForwarding({ workers: () => [], timeoutMs: 1_000 });
    expect((await forwarding.forward(request)).status).toBe(503);
    const a = worker();
    const closing = new AdminForwarding({ workers: () => [a], timeoutMs: 1_000 });
    const pending = closing.forward(request);
    closing.close();
    expect(JSON.parse((await pending).body)).toEqual({ error: "the server is stopping" });
    closing.close();
  });
});
