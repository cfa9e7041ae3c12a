/** Types of parse-prometheus-text-format 1.1 (it ships none): prom2json-shaped families. */
declare module 'parse-prometheus-text-format' {
  /** One sample: a value, or for histograms and summaries their buckets/quantiles, count and sum. */
  export interface PrometheusSample {
    value?: string
    labels?: Record<string, string>
    buckets?: Record<string, string>
    quantiles?: Record<string, string>
    count?: string
    sum?: string
  }
  /** One metric family. */
  export interface PrometheusFamily {
    name: string
    help: string
    type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED'
    metrics: PrometheusSample[]
  }
  export default function parsePrometheusTextFormat(text: string): PrometheusFamily[]
}
