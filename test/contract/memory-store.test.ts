import { MemoryStore } from "../../src/backends/memory/memory-store.ts";
import { storeContract } from "./store.contract.ts";

storeContract("MemoryStore", () => new MemoryStore());
