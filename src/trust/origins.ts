/**
 * The browser origins a deployment accepts (`allowed_origins`): a browser names the page that opens
 * a connection in its `Origin` header, and a page of another site is refused. A request without
 * `Origin` is no browser's (a native client, a server, a test tool) and always passes: the header
 * protects users' browsers, not the server.
 */
export interface OriginPolicy {
  /** True when `origin` (the request's `Origin` header, if any) may connect. */
  allowed(origin: string | undefined): boolean;
  /** True when every origin is allowed (`*` is listed): nothing needs checking. */
  readonly allowsAll: boolean;
}

/** `scheme://host[:port]` as browsers write it: lowercase, no trailing slash. */
const normalOrigin = (origin: string): string => origin.trim().replace(/\/+$/, "").toLowerCase();

/**
 * The policy of a list of origins (`https://app.example.com`, `http://localhost:3000`; compared
 * without case and trailing slash), where `*` allows every origin. An empty list allows no browser.
 */
export function originPolicy(origins: readonly string[]): OriginPolicy {
  const allowsAll = origins.includes("*");
  const listed = new Set(origins.map(normalOrigin));
  return {
    allowsAll,
    allowed: (origin) => origin === undefined || allowsAll || listed.has(normalOrigin(origin)),
  };
}
