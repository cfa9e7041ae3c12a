/**
 * The terminal peer's signing key, kept in a file of its profile directory (mode 0600),
 * as a browser profile keeps it in IndexedDB: the same key on every run of this machine's
 * `zerostate`, so what it publishes and the receipts it holds stay its own.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { KeyStore } from '../lib/index.ts'

export class FileKeyStore implements KeyStore {
  readonly path: string
  constructor(dir: string) {
    this.path = join(dir, 'identity.key')
  }
  async load(): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(this.path))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }
  async save(bytes: Uint8Array): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 })
    // Written aside and renamed: a crash never leaves half a key.
    const tmp = `${this.path}.${process.pid}.tmp`
    await writeFile(tmp, bytes, { mode: 0o600 })
    await rename(tmp, this.path)
  }
}
