export { createDrfSorter, dominantShare } from './drf.ts';
export { SorterError } from './errors.ts';
export type { Sorter, SorterFactory } from './types.ts';
