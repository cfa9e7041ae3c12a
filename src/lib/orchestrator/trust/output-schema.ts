/**
 * A donor's output is checked against the agent manifest's output JSON Schema before
 * anything else; a mismatch is a wrong result. `@cfworker/json-schema` compiles
 * nothing with `eval` / `new Function` (FIELD-NOTES: ajv needs `unsafe-eval`), so it
 * runs under the app's CSP.
 */
import { Validator, type Schema } from '@cfworker/json-schema'
import { isBytes, logger } from '../../core/index.ts'

const log = logger('orchestrator:trust:schema')

/** Validators cached per agent (an agent's manifest, hence its schema, never changes under its content id). */
export class OutputSchemas {
  readonly #cache = new Map<string, Validator | null>()
  readonly #max: number

  constructor(max = 256) {
    this.#max = max
  }

  /**
   * Why `output` does not match `schema` (the first error, one line), or undefined when it does
   * or there is no usable schema. Byte outputs are not JSON and are not checked.
   */
  check(agentId: string, schema: Record<string, unknown> | undefined, output: unknown): string | undefined {
    if (schema == null || isBytes(output)) return undefined
    const validator = this.#validator(agentId, schema)
    if (validator == null) return undefined
    let res: ReturnType<Validator['validate']>
    try {
      // JSON round trip: the validator sees what crossed the wire (no undefined, no functions).
      res = validator.validate(output === undefined ? null : (JSON.parse(JSON.stringify(output)) as unknown))
    } catch (err) {
      return `the output is not JSON (${(err as Error).message})`
    }
    if (res.valid) return undefined
    const e = res.errors.at(-1) ?? res.errors[0]
    return e == null ? 'the output does not match the schema' : `${e.instanceLocation}: ${e.error}`.slice(0, 300)
  }

  #validator(agentId: string, schema: Record<string, unknown>): Validator | null {
    let v = this.#cache.get(agentId)
    if (v !== undefined) return v
    try {
      v = new Validator(schema as Schema, '2020-12', false)
    } catch (err) {
      // A schema the validator cannot read is no schema (the manifest was signed and published as is).
      log.error('output schema of %s is unusable: %s', agentId, (err as Error).message)
      v = null
    }
    if (this.#cache.size >= this.#max) this.#cache.delete(this.#cache.keys().next().value!)
    this.#cache.set(agentId, v)
    return v
  }
}
