import { describe, expect, it } from 'vitest';
import type { TaskStatus } from '../../lib/protocol/common.ts';
import {
  acceptCall,
  acknowledgeCall,
  declineCall,
  frameworkQueueName,
  killCall,
  reconcileCall,
  SCHEDULER_EVENT_TYPES,
  subscribeCall,
  teardownCall,
} from '../../lib/sdk/calls.ts';
import { commandInfo, describeCommand } from '../../lib/sdk/command.ts';
import { InvalidCallError } from '../../lib/sdk/errors.ts';

const status = (over: Partial<TaskStatus> = {}): TaskStatus => ({
  taskId: 't1',
  frameworkId: 'fw',
  agentId: 'a1',
  state: 'TASK_RUNNING',
  source: 'SOURCE_AGENT',
  uuid: 'u1',
  timestamp: 1,
  ...over,
});

describe('call builders', () => {
  it('SUBSCRIBE carries the framework with Mesos defaults', () => {
    expect(subscribeCall({ frameworkId: 'fw', name: 'n', queueUrl: 'https://q.example/fw.fifo' })).toEqual({
      v: 1,
      type: 'SUBSCRIBE',
      framework: {
        frameworkId: 'fw',
        name: 'n',
        roles: ['*'],
        failoverTimeoutSeconds: 0,
        queueUrl: 'https://q.example/fw.fifo',
        partitionAware: false,
      },
    });
  });

  it('ACCEPT wraps the tasks in one LAUNCH and fills command defaults; no tasks is a decline', () => {
    const call = acceptCall(
      'fw',
      ['o1'],
      [{ taskId: 't1', agentId: 'a1', resources: { cpus: 0.1, mem: 32 }, command: { value: 'true' } }],
      { refuseSeconds: 10 },
    );
    expect(call.operations).toEqual([
      {
        type: 'LAUNCH',
        tasks: [
          {
            taskId: 't1',
            agentId: 'a1',
            resources: { cpus: 0.1, mem: 32 },
            command: { shell: true, value: 'true' },
          },
        ],
      },
    ]);
    expect(call.filters).toEqual({ refuseSeconds: 10 });
    expect(acceptCall('fw', ['o1'], []).operations).toEqual([]);
  });

  it('DECLINE has filters only when refuseSeconds is given', () => {
    expect(declineCall('fw', ['o1', 'o2'])).toEqual({
      v: 1,
      type: 'DECLINE',
      frameworkId: 'fw',
      offerIds: ['o1', 'o2'],
    });
    expect(declineCall('fw', ['o1'], 5).filters).toEqual({ refuseSeconds: 5 });
  });

  it('KILL, RECONCILE and TEARDOWN', () => {
    expect(killCall('fw', 't1')).toEqual({ v: 1, type: 'KILL', frameworkId: 'fw', taskId: 't1' });
    expect(killCall('fw', 't1', 'a1').agentId).toBe('a1');
    expect(reconcileCall('fw').tasks).toEqual([]);
    expect(reconcileCall('fw', [{ taskId: 't1' }, { taskId: 't2', agentId: 'a1' }]).tasks).toEqual([
      { taskId: 't1' },
      { taskId: 't2', agentId: 'a1' },
    ]);
    expect(teardownCall('fw')).toEqual({ v: 1, type: 'TEARDOWN', frameworkId: 'fw' });
  });

  it('ACKNOWLEDGE only for updates with a uuid, and they must name their agent', () => {
    expect(acknowledgeCall('fw', status())).toEqual({
      v: 1,
      type: 'ACKNOWLEDGE',
      frameworkId: 'fw',
      agentId: 'a1',
      taskId: 't1',
      uuid: 'u1',
    });
    expect(acknowledgeCall('fw', status({ uuid: undefined }))).toBeUndefined();
    expect(() => acknowledgeCall('fw', status({ agentId: undefined }))).toThrow(InvalidCallError);
  });

  it('refuses calls that break the protocol before sending them', () => {
    expect(() => killCall('fw', 'bad id with spaces')).toThrow(/invalid KILL call: taskId/);
    expect(() => declineCall('fw', [])).toThrow(InvalidCallError);
    expect(() =>
      acceptCall(
        'fw',
        ['o1'],
        [{ taskId: 't', agentId: 'a', resources: { cpus: 0.0001 }, command: { value: 'x' } }],
      ),
    ).toThrow(/three decimal/);
  });

  it('knows every event type', () => {
    expect([...SCHEDULER_EVENT_TYPES].sort()).toEqual(
      ['ERROR', 'FAILURE', 'HEARTBEAT', 'OFFERS', 'RESCIND', 'SUBSCRIBED', 'UPDATE'].sort(),
    );
  });
});

describe('frameworkQueueName', () => {
  it('is <prefix>-fw-<id>.fifo', () => {
    expect(frameworkQueueName('meso', '0b6e2d2a-1f0e-4c43-9f41-6a7c1d1d2f00')).toBe(
      'meso-fw-0b6e2d2a-1f0e-4c43-9f41-6a7c1d1d2f00.fifo',
    );
  });

  it('replaces characters SQS refuses and keeps distinct ids distinct', () => {
    const a = frameworkQueueName('meso', 'spark@host:1');
    const b = frameworkQueueName('meso', 'spark_host_1');
    expect(a).toMatch(/^meso-fw-spark_host_1-[0-9a-f]{12}\.fifo$/);
    expect(b).toBe('meso-fw-spark_host_1.fifo');
    expect(a).not.toBe(b);
  });

  it('fits long ids into 80 characters', () => {
    const name = frameworkQueueName('meso-test-1234', 'x'.repeat(128));
    expect(name.length).toBeLessThanOrEqual(80);
    expect(name).toMatch(/^[A-Za-z0-9_-]+\.fifo$/);
    expect(frameworkQueueName('meso-test-1234', `${'x'.repeat(127)}y`)).not.toBe(name);
  });
});

describe('commandInfo', () => {
  it('a string runs through the shell, an argv without one (argv[0] included, as Mesos)', () => {
    expect(commandInfo('echo $HOME')).toEqual({ shell: true, value: 'echo $HOME' });
    expect(commandInfo(['sh', '-c', 'echo hi'])).toEqual({
      shell: false,
      value: 'sh',
      arguments: ['sh', '-c', 'echo hi'],
    });
  });

  it('carries the environment and user; refuses an empty command', () => {
    expect(commandInfo('env', { env: { A: '1' }, user: 'nobody' })).toEqual({
      shell: true,
      value: 'env',
      environment: { A: '1' },
      user: 'nobody',
    });
    expect(commandInfo('env', { env: {} })).toEqual({ shell: true, value: 'env' });
    expect(() => commandInfo('  ')).toThrow(InvalidCallError);
    expect(() => commandInfo([])).toThrow(InvalidCallError);
  });

  it('describes argv with quotes where needed', () => {
    expect(describeCommand(['sh', '-c', "echo 'hi'"])).toBe(`sh -c 'echo '\\''hi'\\'''`);
    expect(describeCommand('echo hi')).toBe('echo hi');
  });
});
