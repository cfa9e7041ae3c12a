/**
 * This thread's V8 profiler (ZS_SIM_IDLE_PROFILE): the main thread profiles around a window
 * (scenario.ts), a worker thread between two commands (group.ts). CPU by default; with
 * ZS_SIM_PROFILE_KIND=heap, V8's sampling heap profiler over every allocation of the window
 * (what scavenges collected too), written as a .heapprofile beside where the .cpuprofile goes.
 */
import { writeFile } from 'node:fs/promises'

/** Starts profiling this thread; the returned function stops it and writes the profile to `file`. */
export async function startProfile(): Promise<(file: string) => Promise<void>> {
  const { Session } = await import('node:inspector/promises')
  const session = new Session()
  session.connect()
  const heap = process.env.ZS_SIM_PROFILE_KIND === 'heap'
  if (heap) {
    await session.post('HeapProfiler.enable')
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 64 * 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true
    })
  } else {
    await session.post('Profiler.enable')
    await session.post('Profiler.start')
  }
  return async (file) => {
    try {
      if (heap) {
        const { profile } = await session.post('HeapProfiler.stopSampling')
        await writeFile(file.replace(/\.cpuprofile$/, '.heapprofile'), JSON.stringify(profile))
      } else {
        const { profile } = await session.post('Profiler.stop')
        await writeFile(file, JSON.stringify(profile))
      }
    } finally {
      session.disconnect()
    }
  }
}
