import { describe, expect, it } from 'vitest'
import { checkFields, emptyFields, fieldsFromManifest, issuesToFields } from './manifest-form.ts'

describe('publish form ⇄ manifest', () => {
  it('an empty name and a negative price are both reported, each on its own field, in sentences', () => {
    const r = checkFields({ ...emptyFields(), name: '', capabilities: 'testing', price: -3 })
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(Object.keys(r.errors).sort()).toEqual(['name', 'price'])
    expect(r.errors.name).toMatch(/^Give the agent a name/)
    expect(r.errors.price).toMatch(/^The price cannot be negative/)
  })

  it('form-only faults (schema JSON, limits) come with the schema faults, not instead of them', () => {
    const r = checkFields({ ...emptyFields(), name: 'ok', capabilities: '', inputSchema: '{nope', timeMs: 1.5 })
    expect(!r.ok && Object.keys(r.errors).sort()).toEqual(['capabilities', 'inputSchema', 'timeMs'])
  })

  it('an empty price is a free agent: the manifest leaves it out (default 0)', () => {
    const r = checkFields({ ...emptyFields(), name: 'free-one', capabilities: 'testing' })
    expect(r.ok && r.manifest).toEqual({ name: 'free-one', version: '1.0.0', description: '', capabilities: ['testing'], abi: 'json-v1' })
    expect(fieldsFromManifest({ name: 'x' }).price).toBe('')
  })

  it("maps the API's issues back onto form fields", () => {
    const m = issuesToFields([
      { field: 'limits.memoryMiB', message: 'm' },
      { field: 'output', message: 'o' },
      { field: 'author', message: 'a' }
    ])
    expect(m).toEqual({ fields: { memoryMiB: 'm', outputSchema: 'o' }, other: ['a'] })
  })
})
