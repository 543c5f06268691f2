/**
 * Installation and the node-level pieces around it: `meso-agent install --dry-run` as a real
 * process, the files install and uninstall write and remove (in a scratch root, systemd stubbed),
 * EC2 attributes (an injected HTTP client: the metadata address is never contacted), container
 * arguments, and sandbox garbage collection.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ec2Attributes, looksLikeEc2 } from '../../agent/ec2.ts';
import { allowedAge, collectSandboxes } from '../../agent/gc.ts';
import { applyInstall, envValue, planInstall, systemCertDir, uninstall } from '../../agent/install.ts';
import { containerRunArgs } from '../../agent/isolation/containers.ts';
import { agentClusterConfig, withEnvDefaults } from '../../agent/main.ts';
import { shellTask, tempDir } from './helpers.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const QUEUE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/meso-agent-calls.fifo';

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await dir.remove();
});

function meso_agent(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'bin/meso-agent.ts'), ...args],
      { cwd: ROOT, encoding: 'utf8' },
      (e, stdout, stderr) => done({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('meso-agent install', () => {
  it('--dry-run prints the unit and the configuration it would write, and writes nothing', async () => {
    const unitDir = join(dir.path, 'systemd');
    const r = await meso_agent([
      'install',
      '--dry-run',
      '--queue-url',
      QUEUE,
      '--region',
      'eu-west-1',
      '--profile',
      'meso-agent',
      '--resources',
      'cpus:4;mem:8192',
      '--attributes',
      'rack:r1;zone:a',
      '--agent-id',
      'node-17',
      '--instance-arn',
      'arn:aws:ec2:eu-west-1:123456789012:instance/i-0123456789abcdef0',
      '--unit-dir',
      unitDir,
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.stdout;
    // The configuration: the queue, region, credentials profile, resources, attributes, user.
    expect(out).toContain('# would write /etc/meso-agent/agent.env (mode 0600)');
    for (const line of [
      `MESO_QUEUE_AGENT_CALLS="${QUEUE}"`,
      'AWS_REGION="eu-west-1"',
      'AWS_PROFILE="meso-agent"',
      'MESO_AGENT_RESOURCES="cpus:4;mem:8192"',
      'MESO_AGENT_ATTRIBUTES="rack:r1;zone:a"',
      'MESO_AGENT_TASK_USER="nobody"',
      'MESO_AGENT_WORK_DIR="/var/lib/meso-agent"',
      'MESO_AGENT_ID="node-17"',
      'MESO_AGENT_INSTANCE_ARN="arn:aws:ec2:eu-west-1:123456789012:instance/i-0123456789abcdef0"',
    ]) {
      expect(out.split('\n')).toContain(line);
    }
    // The unit: the config as its environment, the agent kept running, tasks kept across restarts.
    expect(out).toContain(`# would write ${join(unitDir, 'meso-agent.service')} (mode 0644)`);
    const unit = out.slice(out.indexOf('[Unit]'), out.indexOf('# would run'));
    expect(unit).toMatch(/^EnvironmentFile=\/etc\/meso-agent\/agent\.env$/m);
    expect(unit).toMatch(
      /^ExecStart=\S+ (--use-openssl-ca )?--optimize-for-size --import \S+ \S+\/bin\/meso-agent\.ts run --keep-tasks$/m,
    );
    for (const l of [
      'Environment=MALLOC_MMAP_THRESHOLD_=131072',
      'Restart=always',
      'KillMode=process',
      'Delegate=yes',
      'WantedBy=multi-user.target',
    ]) {
      expect(unit.split('\n')).toContain(l);
    }
    expect(out).toContain('# would run: systemctl enable --now meso-agent.service');
    expect(existsSync(unitDir)).toBe(false);
  });

  it("verifies TLS against the system's hashed certificate directory when there is one", async () => {
    const hashed = join(dir.path, 'certs');
    const plain = join(dir.path, 'pem-only');
    await mkdir(hashed);
    await mkdir(plain);
    await writeFile(join(plain, 'ca-bundle.crt'), '');
    await writeFile(join(hashed, '5ad8a5d6.0'), '');
    expect(systemCertDir([join(dir.path, 'missing'), plain, hashed])).toBe(hashed);
    expect(systemCertDir([plain])).toBeUndefined();

    const o = { agentCallsQueueUrl: QUEUE, region: 'eu-west-1', execStart: ['/usr/bin/node', '/opt/a.mjs'] };
    const unit = planInstall({ ...o, certDir: hashed }).unit.split('\n');
    expect(unit).toContain(`Environment=SSL_CERT_DIR=${hashed}`);
    expect(unit).toContain('ExecStart=/usr/bin/node --use-openssl-ca /opt/a.mjs run --keep-tasks');
    const bundled = planInstall({ ...o, certDir: null }).unit;
    expect(bundled).not.toContain('SSL_CERT_DIR');
    expect(bundled).toContain('ExecStart=/usr/bin/node /opt/a.mjs run --keep-tasks');
  });

  it('refuses to install without the queue URL', async () => {
    const r = await meso_agent(['install', '--dry-run']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--queue-url is required');
  });

  it('writes the files, starts the service, and uninstall removes them all', async () => {
    const ran: string[] = [];
    const run = (file: string, args: readonly string[]) => void ran.push([file, ...args].join(' '));
    const paths = {
      unitDir: join(dir.path, 'etc/systemd/system'),
      configDir: join(dir.path, 'etc/meso-agent'),
      workDir: join(dir.path, 'var/lib/meso-agent'),
    };
    const plan = planInstall({
      agentCallsQueueUrl: QUEUE,
      region: 'eu-west-1',
      ...paths,
      execStart: ['/usr/bin/node', '/opt/meso-agent/meso-agent.mjs'],
      certDir: null,
    });
    applyInstall(plan, { agentId: 'node-17', run, systemd: true });
    expect(await readFile(join(paths.unitDir, 'meso-agent.service'), 'utf8')).toContain(
      'ExecStart=/usr/bin/node /opt/meso-agent/meso-agent.mjs run --keep-tasks',
    );
    expect((await stat(join(paths.configDir, 'agent.env'))).mode & 0o777).toBe(0o600);
    expect((await readFile(join(paths.workDir, 'agent-id'), 'utf8')).trim()).toBe('node-17');
    expect(ran).toEqual(['systemctl daemon-reload', 'systemctl enable --now meso-agent.service']);

    const done = await uninstall({ ...paths, purge: true, run, systemd: true });
    expect(done).toContain('stopped and disabled meso-agent.service');
    expect(existsSync(join(paths.unitDir, 'meso-agent.service'))).toBe(false);
    expect(existsSync(join(paths.configDir, 'agent.env'))).toBe(false);
    expect(existsSync(paths.workDir)).toBe(false);
  });

  it('without systemd, writes the files and says how to start the agent', () => {
    const paths = {
      unitDir: join(dir.path, 'u'),
      configDir: join(dir.path, 'c'),
      workDir: join(dir.path, 'w'),
    };
    const plan = planInstall({
      agentCallsQueueUrl: QUEUE,
      region: 'eu-west-1',
      ...paths,
      execStart: ['node', 'a.mjs'],
    });
    expect(() => applyInstall(plan, { systemd: false })).toThrow(/systemd is not running on this machine/);
    expect(existsSync(join(paths.unitDir, 'meso-agent.service'))).toBe(true);
  });

  it('quotes configuration values for systemd, and run reads them back as defaults', () => {
    expect(envValue('cpus:4;mem:8192')).toBe('"cpus:4;mem:8192"');
    expect(envValue('a "b" $c \\d')).toBe('"a \\"b\\" \\$c \\\\d"');
    expect(() => envValue('two\nlines')).toThrow(/line breaks/);
    const env = {
      MESO_QUEUE_AGENT_CALLS: QUEUE,
      AWS_REGION: 'eu-west-1',
      MESO_AGENT_RESOURCES: 'cpus:4',
      MESO_AGENT_TASK_USER: 'nobody',
      MESO_AGENT_ALLOW_ROOT_TASKS: 'true',
    };
    expect(agentClusterConfig(env)).toMatchObject({
      prefix: 'meso',
      agentCallsQueueUrl: QUEUE,
      aws: { region: 'eu-west-1' },
      source: 'environment',
    });
    expect(withEnvDefaults({ resources: 'cpus:1' }, env)).toMatchObject({
      resources: 'cpus:1',
      taskUser: 'nobody',
      allowRootTasks: true,
    });
  });
});

describe('EC2 attributes', () => {
  it('reads the instance type and zone through IMDSv2 (injected client)', async () => {
    const calls: string[] = [];
    const fakeFetch = (async (url: string | URL, init?: RequestInit) => {
      calls.push(`${init?.method ?? 'GET'} ${String(url)}`);
      const u = String(url);
      if (u.endsWith('/api/token')) return new Response('tok');
      expect((init?.headers ?? {}) as Record<string, string>).toMatchObject({
        'X-aws-ec2-metadata-token': 'tok',
      });
      if (u.endsWith('/instance-type')) return new Response('m7g.large');
      if (u.endsWith('/placement/availability-zone')) return new Response('eu-west-1b');
      return new Response('', { status: 404 });
    }) as typeof fetch;
    expect(await ec2Attributes({ endpoint: 'http://imds.test', fetch: fakeFetch })).toEqual({
      'ec2.instance-type': 'm7g.large',
      'ec2.availability-zone': 'eu-west-1b',
    });
    expect(calls[0]).toBe('PUT http://imds.test/latest/api/token');
  });

  it('recognises EC2 from the DMI vendor or the hypervisor uuid only', () => {
    expect(looksLikeEc2(() => undefined)).toBe(false);
    expect(looksLikeEc2((f) => (f.endsWith('sys_vendor') ? 'Amazon EC2\n' : undefined))).toBe(true);
    expect(looksLikeEc2((f) => (f === '/sys/hypervisor/uuid' ? 'ec2e1916-9099-7caf\n' : undefined))).toBe(
      true,
    );
    expect(looksLikeEc2((f) => (f.endsWith('sys_vendor') ? 'QEMU\n' : undefined))).toBe(false);
  });
});

describe('containers', () => {
  it('runs the image with the task limits, sandbox, environment and user', () => {
    const task = shellTask('c1', 'echo hi', {
      resources: { cpus: 0.5, mem: 128 },
      container: { type: 'DOCKER', image: 'busybox:1.36', network: 'BRIDGE' },
      command: { shell: true, value: 'echo hi', environment: { A: '1' } },
    });
    const args = containerRunArgs(
      { agentId: 'a', frameworkId: 'f', task, runId: 'r1', sandbox: '/w/s', state: {} },
      { file: '/bin/sh', args: [], env: { PATH: '/bin', MESO_TASK_ID: 'c1' }, cwd: '/w/s' },
      { name: 'meso-r1', user: { uid: 65534, gid: 65534 }, pidsMax: 4096 },
    );
    expect(args.join(' ')).toBe(
      'run --name meso-r1 --init --log-driver none --security-opt no-new-privileges --cap-drop ALL --network bridge --cpus 0.5 --memory 128m --memory-swap 128m ' +
        '--pids-limit 4096 --user 65534:65534 --volume /w/s:/mnt/mesos/sandbox --workdir /mnt/mesos/sandbox ' +
        '--env MESO_TASK_ID=c1 --env HOME=/mnt/mesos/sandbox --env MESOS_SANDBOX=/mnt/mesos/sandbox ' +
        '--env MESO_SANDBOX=/mnt/mesos/sandbox --env A=1 busybox:1.36 /bin/sh -c echo hi',
    );
  });
});

describe('sandbox garbage collection', () => {
  it('removes ended sandboxes older than the age the disk allows, and keeps running ones', async () => {
    const old = join(dir.path, 'sandboxes/fw/t1/run-old');
    const kept = join(dir.path, 'sandboxes/fw/t2/run-live');
    const fresh = join(dir.path, 'sandboxes/fw/t3/run-new');
    for (const d of [old, kept, fresh]) {
      await mkdir(d, { recursive: true });
      await writeFile(join(d, 'stdout'), 'x');
    }
    const now = Date.now();
    const twoDaysAgo = new Date(now - 2 * 86400_000);
    for (const d of [old, kept]) {
      await utimes(join(d, 'stdout'), twoDaysAgo, twoDaysAgo);
      await utimes(d, twoDaysAgo, twoDaysAgo);
    }
    const day = 86400_000;
    const r = await collectSandboxes({
      workDir: dir.path,
      keep: new Set([kept]),
      maxAgeMs: 7 * day,
      diskUsage: 0.7,
      now,
    });
    expect(r.allowedAgeMs).toBe(allowedAge(7 * day, 0.1, 0.7));
    expect(r.removed).toEqual([old]);
    expect(existsSync(join(dir.path, 'sandboxes/fw/t1'))).toBe(false);
    expect(existsSync(kept) && existsSync(fresh)).toBe(true);
    // A full disk allows no age at all.
    expect(allowedAge(7 * day, 0.1, 0.95)).toBe(0);
  });
});
