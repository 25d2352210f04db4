import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { get as httpsGet } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Certificate {
  /** PEM files for the server's tls_cert and tls_key. */
  readonly certPath: string;
  readonly keyPath: string;
  /** The certificate's PEM text, for clients to trust (`ca`). */
  readonly ca: string;
  /** Deletes the temp dir holding the files. */
  remove(): void;
}

/**
 * A self-signed certificate for 127.0.0.1, written by openssl into a fresh temp dir. Throws when
 * openssl is missing or fails: the TLS tests must fail with that message, never skip.
 */
export function makeCertificate(): Certificate {
  const dir = mkdtempSync(join(tmpdir(), "peer-tls-"));
  const certPath = join(dir, "cert.pem");
  const keyPath = join(dir, "key.pem");
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  try {
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", keyPath, "-out", certPath],
      { stdio: "pipe" },
    );
  } catch (error) {
    remove();
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(
      code === "ENOENT"
        ? "openssl is not installed: the TLS tests need it to generate a self-signed certificate (install openssl)"
        : `openssl could not generate a certificate: ${String((error as { stderr?: Buffer }).stderr ?? error)}`,
    );
  }
  return { certPath, keyPath, ca: readFileSync(certPath, "utf8"), remove };
}

/** GET over https trusting `ca`; resolves with the status and the parsed JSON body. */
export function httpsJson(url: string, ca: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    httpsGet(url, { ca }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
    }).on("error", reject);
  });
}
