/**
 * Key pairs kept in the browser's IndexedDB. CryptoKey objects are stored as they are (structured
 * clone), so a non-extractable private key stays non-extractable: the page can sign with it and
 * never read it.
 */

const DATABASE = "peer-server";
const STORE = "identities";

function openDatabase(): Promise<IDBDatabase> {
  const factory = (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (factory === undefined) {
    return Promise.reject(new Error("IndexedDB is not available here: use Identity.generate() or Identity.fromKeyPair()"));
  }
  return new Promise((resolve, reject) => {
    const request = factory.open(DATABASE, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error("IndexedDB open failed"));
  });
}

function run<T>(mode: IDBTransactionMode, operation: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  return openDatabase().then(
    (database) =>
      new Promise<T>((resolve, reject) => {
        const transaction = database.transaction(STORE, mode);
        const request = operation(transaction.objectStore(STORE));
        transaction.oncomplete = () => {
          database.close();
          resolve(request.result);
        };
        transaction.onerror = () => {
          database.close();
          reject(transaction.error ?? new Error("IndexedDB transaction failed"));
        };
      }),
  );
}

/** The key pair stored under `name`, if any. */
export async function loadKeyPair(name: string): Promise<CryptoKeyPair | undefined> {
  const value = (await run("readonly", (store) => store.get(name))) as Partial<CryptoKeyPair> | undefined;
  return value?.privateKey !== undefined && value.publicKey !== undefined ? (value as CryptoKeyPair) : undefined;
}

/** Stores `pair` under `name`, replacing what was there. */
export async function saveKeyPair(name: string, pair: CryptoKeyPair): Promise<void> {
  await run("readwrite", (store) => store.put({ publicKey: pair.publicKey, privateKey: pair.privateKey }, name));
}

/** Forgets the key pair stored under `name`. */
export async function deleteKeyPair(name: string): Promise<void> {
  await run("readwrite", (store) => store.delete(name));
}
