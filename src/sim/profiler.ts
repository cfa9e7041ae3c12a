/**
 * This thread's V8 CPU profiler (ZS_SIM_IDLE_PROFILE): the main thread profiles around a window
 * (scenario.ts), a worker thread between two commands (group.ts).
 */
import { writeFile } from 'node:fs/promises'

/** Starts profiling this thread; the returned function stops it and writes the profile to `file`. */
export async function startProfile(): Promise<(file: string) => Promise<void>> {
  const { Session } = await import('node:inspector/promises')
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.start')
  return async (file) => {
    try {
      const { profile } = await session.post('Profiler.stop')
      await writeFile(file, JSON.stringify(profile))
    } finally {
      session.disconnect()
    }
  }
}
