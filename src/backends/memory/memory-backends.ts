import type { Backends } from "../backends.ts";
import { ADDRESS_REGISTRATIONS, createMemoryRegistrationLimits, type RegistrationRate } from "../registration-limiter.ts";
import { MemoryBudgetStore } from "./memory-budget-store.ts";
import { MemoryStore } from "./memory-store.ts";

/**
 * The embedded default: one process alone, everything in its memory. Nothing can be down.
 * `addressRegistrations`: registrations per client address (default: the configuration's default).
 */
export function memoryBackends(addressRegistrations: RegistrationRate = ADDRESS_REGISTRATIONS): Backends {
  const store = new MemoryStore();
  const budgetStore = new MemoryBudgetStore();
  return {
    store,
    budgetStore,
    registrationLimits: createMemoryRegistrationLimits(addressRegistrations),
    health: () => ({}),
    attach: async () => undefined,
    async close() {
      await store.close();
      await budgetStore.close();
    },
  };
}
