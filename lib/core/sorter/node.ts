/** The nodes of the sorter's role tree, and the scalar quantities shares are computed on. */

/** The scalar quantities shares are computed on (thousandths). */
export interface Scalars {
  cpus: number;
  mem: number;
  disk: number;
  gpus: number;
}

export type NodeKind = 'root' | 'role' | 'group' | 'leaf';

/** A node of the role tree. The allocator reads it and may hang its own state on `data`. */
export class TreeNode {
  cpus = 0;
  mem = 0;
  disk = 0;
  gpus = 0;
  share = 0;
  weight = 1;
  /** Children in the order to serve them (lowest share first). Leaves have none. */
  readonly children: TreeNode[] = [];
  /** Free for the caller (the allocator keeps per-role or per-leaf state here). */
  data: unknown = undefined;
  /** For a role node, its group of frameworks, once one is added. */
  group: TreeNode | undefined = undefined;
  /** Leaves in this subtree: the walk skips subtrees without any. */
  leafCount = 0;

  constructor(
    readonly kind: NodeKind,
    /** Tie-breaker among siblings: the last path segment, `.` for a group, the client for a leaf. */
    readonly id: string,
    /** The role path (`eng/web`); `''` for the root. A group's and a leaf's role is their role's. */
    readonly role: string,
    readonly parent: TreeNode | undefined,
    /** For leaves: the client (a framework id). */
    readonly client: string,
  ) {}
}
