/**
 * A deployment that makes no progress within its deadline shows as `stuck`, with the reason, in
 * `meso apps` and `meso app show`, and can be rolled back — on a test clock, over the services
 * framework's store port (kept in memory here; the DynamoDB store is the e2e tests').
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AppDefinition, AppRecord } from '../../../lib/frameworks/services/app.ts';
import type { Instance } from '../../../lib/frameworks/services/instance.ts';
import type { AppSpec, ServicesMeta, ServicesStore } from '../../../lib/frameworks/services/store.ts';
import { mesoCli } from '../../e2e/meso-cli.ts';

class MemoryServicesStore implements ServicesStore {
  apps = new Map<string, AppRecord>();
  versions = new Map<string, { version: string; def: AppDefinition }[]>();
  instances = new Map<string, Instance>();
  async listApps() {
    return [...this.apps.values()];
  }
  async getApp(id: string) {
    return this.apps.get(id);
  }
  async putApp(spec: AppSpec) {
    const old = this.apps.get(spec.def.id);
    this.apps.set(spec.def.id, { ...old, ...spec, backoff: old?.backoff ?? { failures: 0, delayUntil: 0 } });
    this.versions.set(spec.def.id, [
      { version: spec.version, def: spec.def },
      ...(this.versions.get(spec.def.id) ?? []).filter((v) => v.version !== spec.version),
    ]);
  }
  async deleteApp(id: string) {
    this.apps.delete(id);
  }
  async listVersions(id: string) {
    return this.versions.get(id) ?? [];
  }
  async setBackoff(id: string, backoff: AppRecord['backoff']) {
    const a = this.apps.get(id);
    if (a) this.apps.set(id, { ...a, backoff });
  }
  async setProgress(id: string, at: number) {
    const a = this.apps.get(id);
    if (a) this.apps.set(id, { ...a, progressAt: at });
  }
  async listInstances() {
    return [...this.instances.values()];
  }
  async getInstance(taskId: string) {
    return this.instances.get(taskId);
  }
  async putInstance(i: Instance) {
    this.instances.set(i.taskId, i);
  }
  async deleteInstance(taskId: string) {
    this.instances.delete(taskId);
  }
  async getMeta(): Promise<ServicesMeta> {
    return {};
  }
  async updateMeta() {}
}

function harness() {
  const store = new MemoryServicesStore();
  const notices: string[] = [];
  let now = Date.parse('2026-01-01T00:00:00Z');
  const run = mesoCli(() => ({
    apps: {
      open: () => ({ store, notify: async (id: string) => void notices.push(id), close() {} }),
      now: () => now,
    },
  }));
  const instance = (version: string, n: number, over: Partial<Instance> = {}): Instance => ({
    taskId: `web.${version}.${n}`,
    appId: 'web',
    version,
    agentId: `a${n}`,
    hostname: `127.0.0.${n + 1}`,
    attributes: {},
    ports: [31000 + n],
    offerId: `o${version}${n}`,
    phase: 'running',
    healthy: true,
    launchedAt: now,
    ...over,
  });
  return { store, notices, run, instance, advance: (s: number) => (now += s * 1000) };
}

describe('meso apps: a stuck deployment', () => {
  it('shows stuck with the reason after the deadline, and rolls back to the working version', async () => {
    const h = harness();
    const dir = mkdtempSync(join(tmpdir(), 'meso-apps-'));
    const file = (name: string, cmd: string) => {
      const path = join(dir, name);
      writeFileSync(
        path,
        JSON.stringify({
          id: 'web',
          cmd,
          instances: 2,
          ports: 1,
          healthCheck: { protocol: 'TCP' },
          upgradeStrategy: { progressDeadlineSeconds: 300 },
        }),
      );
      return path;
    };
    try {
      // v1 from a definition with a 300 s progress deadline; both instances come up healthy.
      expect((await h.run('app', 'deploy', file('v1.json', 'serve v1'))).code).toBe(0);
      const v1 = (await h.store.getApp('web'))!;
      expect(v1.def.upgradeStrategy.progressDeadlineSeconds).toBe(300);
      for (const n of [0, 1]) await h.store.putInstance(h.instance(v1.version, n));
      expect((await h.run('apps')).out).toMatch(/web\s+2\/2\s+\S+\s+stable/);

      // v2 never passes its health check: deploying, then stuck once 300 s pass without progress.
      h.advance(60);
      expect((await h.run('app', 'deploy', file('v2.json', 'serve v2 --broken'))).code).toBe(0);
      const v2 = (await h.store.getApp('web'))!;
      await h.store.putInstance(h.instance(v2.version, 2, { healthy: false }));
      h.advance(300);
      expect((await h.run('apps')).out).toMatch(/web\s+0\/2\s+\S+\s+deploying \(2 old\)/);
      h.advance(1);
      expect((await h.run('apps')).out).toMatch(/web\s+0\/2\s+\S+\s+stuck \(2 old\)/);
      const show = await h.run('app', 'show', 'web');
      expect(show.out).toContain('app web: 0/2 healthy, stuck');
      expect(show.out).toContain(
        `stuck:    no progress for 301 s (deadline 300 s): 0/2 of version ${v2.version} ready`,
      );
      expect(show.out).toContain('failing health checks');

      // Still roll-back-able: a rollback is a new deployment, with a new deadline.
      const back = await h.run('app', 'rollback', 'web');
      expect(back.code).toBe(0);
      expect(back.out).toContain(`rolling back to ${v1.version}`);
      expect(h.notices).toEqual(['web', 'web', 'web']);
      expect((await h.store.getApp('web'))?.def.cmd).toBe('serve v1');
      expect((await h.run('app', 'show', 'web')).out).not.toContain('stuck');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
