/** Counts what operators watch: rejected calls by reason, offers made, tasks launched. */
export interface Metrics {
  count(name: string, dimensions?: Record<string, string>, value?: number): void;
}

export const noMetrics: Metrics = { count: () => {} };
