import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../observability/logger.ts";
import { adminHandler, type AdminRoute } from "./router.ts";

export interface AdminListenerOptions {
  /** metrics_host: loopback by default; the listener must never face the internet. */
  readonly host: string;
  /** metrics_port; 0 picks a free one. */
  readonly port: number;
  /** admin_token; "" admits every request. */
  readonly token: string;
  readonly routes: readonly AdminRoute[];
  readonly logger: Logger;
}

/** A request's head and its whole must arrive this long after the connection opens: operators and scrapers, never a long poll. */
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * The admin listener of one machine (the cluster primary, or the single process): a plain HTTP
 * server on its own address, apart from the public port, that serves the route table it is given
 * (routes.ts adminHandler). listen() and close() are each safe to call twice.
 */
export class AdminListener {
  private readonly server: Server;
  private listening: Promise<AddressInfo> | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: AdminListenerOptions) {
    this.server = createServer({ headersTimeout: REQUEST_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS }, adminHandler(options.routes, options.token));
  }

  /** Listens on host:port; resolves with the bound address, rejects with the listen error (EADDRINUSE, ...). */
  listen(): Promise<AddressInfo> {
    this.listening ??= new Promise<AddressInfo>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off("error", reject);
        // Later errors (an accept that failed) are the listener's alone: logged, never the process's end.
        this.server.on("error", (error) => this.options.logger.warn({ err: error }, "admin listener error"));
        resolve(this.server.address() as AddressInfo);
      });
    });
    return this.listening;
  }

  /** Stops listening and closes every connection, kept-alive scrapers' included. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      if (!this.server.listening) {
        resolve();
        return;
      }
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }
}
