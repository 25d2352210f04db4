import { createRequire } from "node:module";
import type * as SocketIoParser from "socket.io-parser";

/**
 * socket.io-parser as socket.io itself loads it: its CommonJS build, one copy in memory for both.
 * An ES `import` of the package resolves, under Node, to its `esm-debug` build, a second copy whose
 * encoder and decoder call `debug` on every packet (measured: about 4% slower to encode and decode a signal).
 */
export const socketIoParserLibrary = createRequire(import.meta.url)("socket.io-parser") as typeof SocketIoParser;
