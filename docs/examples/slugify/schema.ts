// What slugify reads and answers. `zerostate agent build` writes these into manifest.json as
// JSON Schema ("input", "output"); the mesh checks every answer against "output".
import * as v from 'valibot'

export const input = v.pipe(v.string(), v.maxLength(100_000), v.description('Any text: a title, a file name, a sentence'))

export const output = v.object({
  slug: v.pipe(
    v.string(),
    v.regex(/^([a-z0-9]+(-[a-z0-9]+)*)?$/),
    v.description("The text's ASCII letters and digits, lower-cased, each run of anything else one '-'")
  ),
  length: v.pipe(v.number(), v.integer(), v.minValue(0), v.description("The slug's length"))
})
