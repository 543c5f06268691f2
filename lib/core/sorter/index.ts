export { createDrfSorter, dominantShare } from './drf.ts';
export { SorterError } from './errors.ts';
export {
  createHierarchicalSorter,
  type HierarchicalSorter,
  type HierarchicalSorterOptions,
  isWithinRole,
  parentRole,
  roleAndAncestors,
  type Scalars,
  type SharePolicy,
  TreeNode,
  weightedDrf,
} from './hierarchical.ts';
export type { Sorter, SorterFactory } from './types.ts';
