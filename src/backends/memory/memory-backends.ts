import type { Backends } from "../backends.ts";
import { createMemoryRegistrationLimiter } from "../registration-limiter.ts";
import { MemoryBudgetStore } from "./memory-budget-store.ts";
import { MemoryStore } from "./memory-store.ts";

/** The embedded default: one process alone, everything in its memory. Nothing can be down. */
export function memoryBackends(): Backends {
  const store = new MemoryStore();
  const budgetStore = new MemoryBudgetStore();
  return {
    store,
    budgetStore,
    registrationLimiter: createMemoryRegistrationLimiter(),
    health: () => ({}),
    attach: async () => undefined,
    async close() {
      await store.close();
      await budgetStore.close();
    },
  };
}
