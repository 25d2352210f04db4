/** The `/ws` and Socket.IO URLs of a server given as http(s) or ws(s) (a trailing `/ws` is allowed), or else the page's origin. */
export function serverUrl(given: string | undefined): { http: string; ws: string } {
  const origin = (globalThis as { location?: { origin: string } }).location?.origin;
  const text = given ?? origin;
  if (text === undefined) throw new Error("no server url: pass the url option");
  const url = new URL(text, origin);
  const secure = url.protocol === "https:" || url.protocol === "wss:";
  const path = url.pathname.replace(/\/ws\/?$/, "").replace(/\/$/, "");
  // Socket.IO reads a URL's path as its namespace: it gets the origin (its `path` option moves its endpoint).
  return { http: `${secure ? "https" : "http"}://${url.host}`, ws: `${secure ? "wss" : "ws"}://${url.host}${path}/ws` };
}
