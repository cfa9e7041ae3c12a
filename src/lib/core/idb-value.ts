/**
 * One value kept under one key of a one-store IndexedDB database: the shape every
 * "load the saved state, save it again" store of the app has. Opens the database per
 * call and closes it after, so no connection blocks another tab's upgrade.
 */
export class IdbValue {
  readonly #dbName: string
  readonly #store: string
  readonly #key: string
  constructor(dbName: string, key: string, store = 'state') {
    this.#dbName = dbName
    this.#key = key
    this.#store = store
  }

  #open(): Promise<IDBDatabase> {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open(this.#dbName, 1)
      req.onupgradeneeded = () => req.result.createObjectStore(this.#store)
      req.onsuccess = () => resolve(req.result)
      req.onerror = () => reject(req.error)
    })
  }

  /** The stored value, unchecked (undefined when none): parse it before use. */
  async read(): Promise<unknown> {
    const db = await this.#open()
    try {
      return await new Promise<unknown>((resolve, reject) => {
        const req = db.transaction(this.#store, 'readonly').objectStore(this.#store).get(this.#key)
        req.onsuccess = () => resolve(req.result)
        req.onerror = () => reject(req.error)
      })
    } finally {
      db.close()
    }
  }

  /** Replace the stored value; resolves once the transaction committed. */
  async write(value: unknown): Promise<void> {
    const db = await this.#open()
    try {
      await new Promise<void>((resolve, reject) => {
        const tx = db.transaction(this.#store, 'readwrite')
        tx.objectStore(this.#store).put(value, this.#key)
        tx.oncomplete = () => resolve()
        tx.onerror = () => reject(tx.error)
      })
    } finally {
      db.close()
    }
  }
}
