import type { Backends } from "../backends.ts";
import { ADDRESS_PREFIX, createMemoryRegistrationLimiter, type RegistrationRate } from "../registration-limiter.ts";
import { MemoryBudgetStore } from "./memory-budget-store.ts";
import { MemoryStore } from "./memory-store.ts";

/**
 * The embedded default: one process alone, everything in its memory. Nothing can be down.
 * `addressRegistrations`: registrations per client address (default: the configuration's default, 20 a second, 100 at once).
 */
export function memoryBackends(addressRegistrations: RegistrationRate = { perSec: 20, burst: 100 }): Backends {
  const store = new MemoryStore();
  const budgetStore = new MemoryBudgetStore();
  return {
    store,
    budgetStore,
    registrationLimiter: createMemoryRegistrationLimiter(),
    addressRegistrationLimiter: createMemoryRegistrationLimiter(addressRegistrations, ADDRESS_PREFIX),
    health: () => ({}),
    attach: async () => undefined,
    async close() {
      await store.close();
      await budgetStore.close();
    },
  };
}
