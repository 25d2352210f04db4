import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { REDACTED_PATHS, withoutCredentials } from "../../src/observability/logger.ts";

/** A logger with the server's redaction that keeps its lines. */
function capture(): { logger: ReturnType<typeof pino>; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString().trim());
      done();
    },
  });
  return { logger: pino({ redact: { paths: [...REDACTED_PATHS], censor: "[redacted]" } }, sink), lines };
}

describe("log redaction", () => {
  it("secret-bearing keys are redacted at the top level and one object down, in file and field spelling", () => {
    const { logger, lines } = capture();
    logger.info({ token: "s1", config: { redis_password: "s2", turnSecret: "s3", adminToken: "s4", pigeonAuthToken: "s5" }, headers: { authorization: "Bearer s6" } }, "x");
    logger.info({ request: { headers: { authorization: "Bearer s7", cookie: "s8" } }, keep: "visible" }, "y");
    const output = lines.join("\n");
    for (let i = 1; i <= 8; i++) expect(output).not.toContain(`s${i}`);
    expect(output).toContain("visible");
    expect(output.match(/\[redacted\]/g)).toHaveLength(8);
  });

  it("withoutCredentials drops a URL's user and password, and leaves host:port alone", () => {
    expect(withoutCredentials("redis://:secret@redis:6379/2")).toBe("redis://redis:6379/2");
    expect(withoutCredentials("rediss://user:p%40ss@host:6380")).toBe("rediss://host:6380");
    expect(withoutCredentials("localhost:6379")).toBe("localhost:6379");
  });
});
