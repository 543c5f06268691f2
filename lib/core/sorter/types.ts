/**
 * The sorter decides *who goes next*; the allocator decides *what to give*. Keeping the policy
 * (fair ordering) apart from the mechanism (walking agents and making offers) is how Mesos's
 * `src/master/allocator/sorter/` works, and it lets another policy replace DRF without touching
 * the allocator.
 *
 * {@link Sorter} is exactly what the allocator calls (`lib/core/allocation/`): it builds the role
 * tree for one cycle (roles, the frameworks in them, what each already holds), then asks for the
 * first eligible framework in fair order once per offer and charges it the offer. A fresh sorter
 * is built every cycle from what the store holds, so nothing is ever removed from one.
 */
import type { Scalars, TreeNode } from './node.ts';

/**
 * Who goes first: the node with the lowest `share` of its allocation, among siblings.
 * Default: weighted DRF (`./drf.ts`).
 */
export interface SharePolicy {
  share(allocated: Scalars, total: Scalars, weight: number): number;
}

export interface SorterOptions {
  /** Role weights (default 1 each). */
  readonly weights?: ReadonlyMap<string, number> | Readonly<Record<string, number>>;
  readonly policy?: SharePolicy;
}

/**
 * A role tree ordered by a {@link SharePolicy}: the root holds the top-level roles, a role its
 * child roles and one *group* of the frameworks directly in it, and each framework is a leaf.
 */
export interface Sorter {
  readonly root: TreeNode;
  /** The role's node, created with its ancestors as needed. */
  role(role: string): TreeNode;
  /** The group node holding the frameworks directly in `role` (created as needed). */
  group(role: string): TreeNode;
  /** Adds a framework (client) to a role; returns its leaf. Adding it twice throws. */
  addLeaf(role: string, client: string): TreeNode;
  /**
   * Charges (sign 1) or credits (sign −1) a leaf, a group or a role node and everything above
   * it, re-sorting each among its siblings. Crediting below zero throws.
   */
  charge(node: TreeNode, r: Scalars, sign?: 1 | -1): void;
  /**
   * The first leaf, walking the tree depth first in each level's order, for which `leafOk` holds.
   * `enter(node)` is asked before a role's or group's subtree is walked (false skips it), and
   * `leave(node)` is called after a subtree that was entered (both optional): the caller can
   * prune whole roles (suppressed, at their quota limit) and keep context along the path.
   * None of the callbacks may change the sorter.
   */
  walk(
    leafOk: (leaf: TreeNode) => boolean,
    enter?: (node: TreeNode) => boolean,
    leave?: (node: TreeNode) => void,
  ): TreeNode | undefined;
}

/** Builds the sorter for one cycle over the cluster totals; the allocator takes one of these. */
export type SorterFactory = (total: Scalars, opts: SorterOptions) => Sorter;
