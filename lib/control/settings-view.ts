/**
 * The allocator's view of the frameworks and the role settings, kept between cycles in the
 * function's instance beside its agents (lib/control/agent-view.ts). A cycle reads the two change
 * markers (lib/control/records/changes.ts: one consistent batch read) and scans the frameworks
 * table, or the roles, only when its marker moved since the view's read — instead of two scans
 * every cycle. Markers are read before the scan, so a change that lands while it runs moves the
 * marker past what the view holds, and the next cycle reads again.
 *
 * A full read of both happens at the first cycle of an instance, every `fullReadMs` (covering a
 * write whose process died before marking it), when the caller asks (a redelivered batch) and
 * when the clock went back. What the allocator does with the records is unchanged: filters
 * expire by the cycle's clock, and an offer is still a conditional write on its agent's version.
 */
import type { FrameworkRecord } from '../core/model.ts';
import type { RoleConfig } from '../core/roles.ts';
import { getEach, type Item, type Store } from '../ports/store.ts';
import { FRAMEWORKS_CHANGED, ROLES_CHANGED } from './records/changes.ts';
import { readRoleConfigs } from './roles.ts';

/** Default: both read in full at least once a minute, as the agents. */
export const SETTINGS_FULL_READ_MS = 60_000;

export interface SettingsRead {
  readonly frameworks: readonly FrameworkRecord[];
  readonly roles: readonly RoleConfig[];
  /** What this read scanned: the frameworks table, the roles (both false: only the markers). */
  readonly scanned: { readonly frameworks: boolean; readonly roles: boolean };
}

export class SettingsView {
  #frameworks: readonly FrameworkRecord[] | undefined;
  #roles: readonly RoleConfig[] | undefined;
  #marks: { frameworks: number; roles: number } | undefined;
  #fullAt: number | undefined;
  readonly #fullReadMs: number;

  constructor(opts: { fullReadMs?: number } = {}) {
    this.#fullReadMs = opts.fullReadMs ?? SETTINGS_FULL_READ_MS;
  }

  async read(store: Store, now: number, full = false): Promise<SettingsRead> {
    const due =
      full || this.#fullAt === undefined || now - this.#fullAt >= this.#fullReadMs || now < this.#fullAt; // a clock that went back: start over
    const [f, r] = await getEach<Item>(store, 'meta', [{ key: FRAMEWORKS_CHANGED }, { key: ROLES_CHANGED }]);
    const marks = { frameworks: Number(f?.count ?? 0), roles: Number(r?.count ?? 0) };
    const scanFrameworks =
      due || this.#frameworks === undefined || marks.frameworks !== this.#marks?.frameworks;
    const scanRoles = due || this.#roles === undefined || marks.roles !== this.#marks?.roles;
    const [frameworks, roles] = await Promise.all([
      scanFrameworks ? store.scan<FrameworkRecord & Item>('frameworks') : this.#frameworks!,
      scanRoles ? readRoleConfigs(store) : this.#roles!,
    ]);
    this.#frameworks = frameworks;
    this.#roles = roles;
    this.#marks = marks;
    if (due) this.#fullAt = now;
    return { frameworks, roles, scanned: { frameworks: scanFrameworks, roles: scanRoles } };
  }
}
