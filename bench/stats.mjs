// Small helpers shared by the bench scripts: statistics and writing bench/results/<name>.json.
import { mkdirSync, writeFileSync } from 'node:fs'

/** Write a bench's results to bench/results/<name>.json and say so. */
export function writeResults(name, result) {
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
  writeFileSync(new URL(`./results/${name}.json`, import.meta.url), `${JSON.stringify(result, null, 2)}\n`)
  console.log(`wrote bench/results/${name}.json`)
}

export function percentile(values, p) {
  if (values.length === 0) return NaN
  const s = [...values].sort((a, b) => a - b)
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))
  return s[i]
}
export function summary(values) {
  const r = (x) => Math.round(x * 1000) / 1000
  return { n: values.length, p50: r(percentile(values, 50)), p95: r(percentile(values, 95)), min: r(Math.min(...values)), max: r(Math.max(...values)) }
}
export function fmt(s, unit = 'ms') {
  return `p50 ${s.p50} ${unit} · p95 ${s.p95} ${unit} (n=${s.n})`
}
