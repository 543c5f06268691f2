/** Builders shared by the allocator and explain tests. */
import type { AllocationAgent, AllocationFramework } from '../../../lib/core/allocator.ts';
import { EMPTY, parse } from '../../../lib/core/resources.ts';

export const agent = (agentId: string, total: string, free = total, active = true): AllocationAgent => ({
  agentId,
  total: parse(total),
  free: parse(free),
  active,
});

/** An active framework in `roles`, holding nothing. */
export const fw = (
  frameworkId: string,
  roles: string[],
  extra: Partial<AllocationFramework> = {},
): AllocationFramework => ({
  frameworkId,
  active: true,
  roles,
  allocated: EMPTY,
  filters: {},
  ...extra,
});
