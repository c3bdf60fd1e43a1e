import type { Histogram, Registry } from "prom-client";

/** One label set's counts: per bucket (not cumulative), the sum and the count of what it observed. */
export interface HistogramSeries {
  readonly labels: Readonly<Record<string, string>>;
  readonly counts: number[];
  sum: number;
  count: number;
}

interface Sample {
  labels: Record<string, string | number>;
  sharedLabels: Readonly<Record<string, string>>;
  value: number;
  metricName: string;
  /** prom-client's buckets carry one (null without exemplars); kept for the same objects. */
  exemplar?: null;
}

/**
 * A Prometheus histogram for observations that come in batches (the held-back request metrics): the
 * caller finds a label set's series once by a key of its own, and each observation is then a bucket
 * search and three additions. prom-client's own Histogram validates and hashes the labels, and finds
 * the bucket by a string key, on every observation: about 9 k instructions each, two or three per
 * gateway call. It shows itself to a prom-client Registry (and the cluster's aggregation) in the same
 * shape as prom-client's: `_bucket` series with `le`, `_sum` and `_count`.
 */
export class BatchHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly bySet = new Map<string, HistogramSeries>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
    registry: Registry,
    /** Run before each read: held-back observations are added then. */
    private readonly collect?: () => void,
  ) {
    // A Registry takes any metric with a name and `get`; its type only lists prom-client's own.
    registry.registerMetric(this as unknown as Histogram);
  }

  /** The series of a label set, made on first use; `key` must tell label sets apart. */
  series(key: string, labels: Record<string, string>): HistogramSeries {
    let series = this.bySet.get(key);
    if (!series) {
      series = { labels, counts: new Array(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
      this.bySet.set(key, series);
    }
    return series;
  }

  /** Counts one value; a value that is not a finite number is left out (it would turn the sum into NaN for good). */
  observe(series: HistogramSeries, value: number) {
    if (!Number.isFinite(value)) return;
    let bucket = 0;
    while (bucket < this.buckets.length && value > (this.buckets[bucket] as number)) bucket++;
    series.counts[bucket] = (series.counts[bucket] as number) + 1;
    series.sum += value;
    series.count++;
  }

  reset() {
    this.bySet.clear();
  }

  /** What the Registry prints: buckets cumulative, `le` first, then the series' own labels. */
  getForPromString() {
    this.collect?.();
    const values: Sample[] = [];
    for (const series of this.bySet.values()) {
      let cumulative = 0;
      for (let bucket = 0; bucket < this.buckets.length; bucket++) {
        cumulative += series.counts[bucket] as number;
        values.push({
          labels: { le: this.buckets[bucket] as number },
          sharedLabels: series.labels,
          value: cumulative,
          metricName: `${this.name}_bucket`,
          exemplar: null,
        });
      }
      values.push({
        labels: { le: "+Inf" },
        sharedLabels: series.labels,
        value: series.count,
        metricName: `${this.name}_bucket`,
        exemplar: null,
      });
      values.push({ labels: {}, sharedLabels: series.labels, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: series.labels, value: series.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** The same as objects (`getMetricsAsJSON`, the cluster's aggregation): each sample's labels in one. */
  async get() {
    const data = this.getForPromString();
    return {
      ...data,
      values: data.values.map(({ labels, sharedLabels, ...sample }) => ({ ...sample, labels: { ...labels, ...sharedLabels } })),
    };
  }
}
