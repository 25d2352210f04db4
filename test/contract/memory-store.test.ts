import { MemoryStore } from "../../src/state/memory-store.ts";
import { storeContract } from "./store.contract.ts";

storeContract("MemoryStore", () => new MemoryStore());
