/** Counts what operators watch: rejected calls by reason, offers made, tasks launched. */
export interface Metrics {
  count(name: string, dimensions?: Record<string, string>, value?: number): void;
  /** A measurement or a gauge (durations, utilisation), where the adapter publishes them. */
  measure?(name: string, value: number, unit: MetricUnitName, dimensions?: Record<string, string>): void;
}

export type MetricUnitName = 'Milliseconds' | 'Percent' | 'Count';

export const noMetrics: Metrics = { count: () => {} };
