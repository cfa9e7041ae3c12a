/** Shared helpers for the runtime and agent tests (not part of the module's API). */
import { loadIdentity, MemoryKeyStore, type Identity } from '../core/index.ts'
import type { AgentAbi } from './constants.ts'
import { signPackage, type AgentPackage, type UnsignedManifest } from './manifest.ts'

let identity: Promise<Identity> | undefined

/** One identity for all test packages. */
export function testIdentity(): Promise<Identity> {
  identity ??= loadIdentity(new MemoryKeyStore())
  return identity
}

/** A minimal unsigned manifest. */
export function testManifest(abi: AgentAbi, extra: Partial<UnsignedManifest> = {}): UnsignedManifest {
  return { name: 'test-agent', version: '1.0.0', description: 'a test agent', capabilities: ['testing'], abi, price: 0, ...extra }
}

/** Sign `wasm` as a package for `abi`. */
export async function testPackage(wasm: Uint8Array, abi: AgentAbi, extra: Partial<UnsignedManifest> = {}): Promise<AgentPackage> {
  const { id, manifest } = await signPackage(await testIdentity(), testManifest(abi, extra), wasm)
  return { id, manifest, wasm }
}
