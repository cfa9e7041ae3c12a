/** The terminal's errors and the exit code each one means (README "From a terminal"). */

/**
 * Exit codes: 0 done, 1 the task or run failed, 2 a usage error, 3 the mesh could not be reached,
 * 4 timed out, 5 the task named is not known here (`trace` of a task this profile did not submit).
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, timeout: 4, notFound: 5 } as const

export class CliError extends Error {
  override readonly name: string = 'CliError'
  readonly exitCode: number
  constructor(message: string, exitCode: number = EXIT.usage) {
    super(message)
    this.exitCode = exitCode
  }
}

/** No relay of the app answered, nor any peer, in time. */
export class MeshUnreachableError extends CliError {
  override readonly name: string = 'MeshUnreachableError'
  constructor(message: string) {
    super(message, EXIT.unreachable)
  }
}

/** Waiting for a result took longer than --timeout. */
export class CliTimeoutError extends CliError {
  override readonly name: string = 'CliTimeoutError'
  constructor(message: string) {
    super(message, EXIT.timeout)
  }
}
