/**
 * The base of every ZeroState error: a stable `name` (its class's; errors cross
 * workers and the wire by name) and a default sentence a user can act on, set per
 * class with `static defaultMessage` (STYLE.md "Errors"). Each layer has its own
 * subclass (MeshError, MemoryError, RuntimeError, OrchestratorError).
 */
export class ZeroStateError extends Error {
  static readonly defaultMessage: string = 'ZeroState failed'
  constructor(message?: string, options?: ErrorOptions) {
    super(message ?? (new.target as typeof ZeroStateError).defaultMessage, options)
    this.name = new.target.name
  }
}
