export { dominantShare, weightedDrf } from './drf.ts';
export { SorterError } from './errors.ts';
export {
  createHierarchicalSorter,
  type HierarchicalSorter,
  type HierarchicalSorterOptions,
  isWithinRole,
  parentRole,
  roleAndAncestors,
  scalarsOfResources,
} from './hierarchical.ts';
export { type NodeKind, type Scalars, TreeNode } from './node.ts';
export type { SharePolicy, Sorter, SorterFactory, SorterOptions } from './types.ts';
