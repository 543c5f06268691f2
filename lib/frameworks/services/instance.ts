/** An instance of an app: one task the services framework launched, as it last heard of it. */
import type { TaskState } from '../../protocol/common.ts';

export type InstancePhase = 'staging' | 'running' | 'killing';

export interface Instance {
  readonly taskId: string;
  readonly appId: string;
  /** The app version it was launched from. */
  readonly version: string;
  readonly agentId: string;
  readonly hostname: string;
  readonly attributes: Readonly<Record<string, string>>;
  /** Host ports it was given: PORT0..PORTn-1. */
  readonly ports: readonly number[];
  /** The offer it was launched on: an offer delivered again is not used twice. */
  readonly offerId: string;
  readonly phase: InstancePhase;
  /** The last health-check result; undefined until the first. */
  readonly healthy?: boolean;
  readonly launchedAt: number;
  readonly lastState?: TaskState;
}

/**
 * Ready: counts toward the healthy count (`3/3`) and the upgrade's minimum. A running instance of
 * an app with a health check is ready once a check passed; without one, once it runs.
 */
export function isReady(i: Instance, hasHealthCheck: boolean): boolean {
  if (i.phase !== 'running') return false;
  return hasHealthCheck ? i.healthy === true : i.healthy !== false;
}

/** Live: launched and not being killed (killing instances still hold resources, but are going). */
export const isLive = (i: Instance): boolean => i.phase !== 'killing';
