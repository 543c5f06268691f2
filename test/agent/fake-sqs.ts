/**
 * A minimal in-memory stand-in for SQSClient, enough to drive the Agent in-process: CreateQueue,
 * GetQueueUrl, SendMessageBatch, ReceiveMessage (long poll, abortable) and DeleteMessageBatch.
 * The SQS-level behaviour is tested against the emulators elsewhere; this checks the agent's wiring.
 */
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';

export interface FakeMessage {
  readonly id: string;
  readonly body: string;
  readonly groupId?: string;
  readonly dedupId?: string;
  receipt?: string;
}

interface FakeQueue {
  readonly name: string;
  readonly url: string;
  readonly attributes: Record<string, string>;
  readonly messages: FakeMessage[];
  /** Everything ever sent, for assertions. */
  readonly history: FakeMessage[];
  readonly waiters: Set<() => void>;
}

export class FakeSqs {
  readonly queues = new Map<string, FakeQueue>();
  readonly calls: string[] = [];
  #n = 0;
  readonly #listeners = new Set<(queueUrl: string, m: FakeMessage) => void>();
  readonly #emptyWaiters = new Set<() => void>();

  get client(): SQSClient {
    return this as unknown as SQSClient;
  }

  createQueue(name: string, attributes: Record<string, string> = {}): string {
    const url = `http://sqs.fake.localhost/000000000000/${name}`;
    if (!this.queues.has(url)) {
      this.queues.set(url, { name, url, attributes, messages: [], history: [], waiters: new Set() });
    }
    return url;
  }

  queue(url: string): FakeQueue {
    const q = this.queues.get(url);
    if (!q) throw Object.assign(new Error(`no queue ${url}`), { name: 'QueueDoesNotExist' });
    return q;
  }

  /** Puts a message on a queue as the control plane would. */
  put(url: string, body: unknown, groupId = 'control'): void {
    const q = this.queue(url);
    const m: FakeMessage = {
      id: `m${++this.#n}`,
      body: typeof body === 'string' ? body : JSON.stringify(body),
      groupId,
    };
    q.messages.push(m);
    q.history.push(m);
    for (const w of [...q.waiters]) w();
    for (const l of this.#listeners) l(url, m);
  }

  /** Resolves with the first message sent to `url` (from now on, or already in its history) that matches. */
  next<T = unknown>(
    url: string,
    match: (body: T, m: FakeMessage) => boolean,
    opts: { fromHistory?: boolean } = {},
  ): Promise<{ body: T; message: FakeMessage }> {
    if (opts.fromHistory) {
      for (const m of this.queue(url).history) {
        const body = JSON.parse(m.body) as T;
        if (match(body, m)) return Promise.resolve({ body, message: m });
      }
    }
    return new Promise((resolve) => {
      const l = (u: string, m: FakeMessage) => {
        if (u !== url) return;
        const body = JSON.parse(m.body) as T;
        if (!match(body, m)) return;
        this.#listeners.delete(l);
        resolve({ body, message: m });
      };
      this.#listeners.add(l);
    });
  }

  /** Resolves once a delete has left queue `url` empty (or at once if it is). */
  whenEmpty(url: string): Promise<void> {
    const q = this.queue(url);
    if (q.messages.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const w = () => {
        if (q.messages.length > 0) return;
        this.#emptyWaiters.delete(w);
        resolve();
      };
      this.#emptyWaiters.add(w);
    });
  }

  async send(command: unknown, opts: { abortSignal?: AbortSignal } = {}): Promise<unknown> {
    if (command instanceof CreateQueueCommand) {
      this.calls.push('CreateQueue');
      return { QueueUrl: this.createQueue(command.input.QueueName!, command.input.Attributes ?? {}) };
    }
    if (command instanceof GetQueueUrlCommand) {
      this.calls.push('GetQueueUrl');
      const q = [...this.queues.values()].find((x) => x.name === command.input.QueueName);
      if (!q) throw Object.assign(new Error('no such queue'), { name: 'QueueDoesNotExist' });
      return { QueueUrl: q.url };
    }
    if (command instanceof SendMessageBatchCommand) {
      this.calls.push('SendMessageBatch');
      const url = command.input.QueueUrl!;
      this.queue(url);
      for (const e of command.input.Entries ?? []) {
        const q = this.queue(url);
        const m: FakeMessage = {
          id: `m${++this.#n}`,
          body: e.MessageBody!,
          groupId: e.MessageGroupId,
          dedupId: e.MessageDeduplicationId,
        };
        q.messages.push(m);
        q.history.push(m);
        for (const w of [...q.waiters]) w();
        for (const l of this.#listeners) l(url, m);
      }
      return { Successful: [], Failed: [] };
    }
    if (command instanceof ReceiveMessageCommand) {
      this.calls.push('ReceiveMessage');
      const q = this.queue(command.input.QueueUrl!);
      const max = command.input.MaxNumberOfMessages ?? 1;
      const take = () => {
        const out = q.messages.filter((m) => m.receipt === undefined).slice(0, max);
        for (const m of out) m.receipt = `r-${m.id}-${++this.#n}`;
        return out;
      };
      let got = take();
      if (got.length === 0 && (command.input.WaitTimeSeconds ?? 0) > 0) {
        await new Promise<void>((resolve, reject) => {
          const done = () => {
            clearTimeout(timer);
            q.waiters.delete(done);
            opts.abortSignal?.removeEventListener('abort', aborted);
          };
          const wake = () => {
            done();
            resolve();
          };
          const aborted = () => {
            done();
            reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
          };
          const timer = setTimeout(wake, (command.input.WaitTimeSeconds ?? 0) * 1000);
          q.waiters.add(wake);
          if (opts.abortSignal?.aborted) aborted();
          else opts.abortSignal?.addEventListener('abort', aborted);
        });
        got = take();
      }
      return {
        Messages: got.map((m) => ({
          MessageId: m.id,
          ReceiptHandle: m.receipt,
          Body: m.body,
          Attributes: {
            MessageGroupId: m.groupId,
            SenderId: 'AIDTEST',
            ApproximateReceiveCount: '1',
            SentTimestamp: '0',
          },
        })),
      };
    }
    if (command instanceof DeleteMessageBatchCommand) {
      this.calls.push('DeleteMessageBatch');
      const q = this.queue(command.input.QueueUrl!);
      const handles = new Set((command.input.Entries ?? []).map((e) => e.ReceiptHandle));
      for (let i = q.messages.length - 1; i >= 0; i--) {
        if (handles.has(q.messages[i]!.receipt)) q.messages.splice(i, 1);
      }
      for (const w of [...this.#emptyWaiters]) w();
      return { Successful: [], Failed: [] };
    }
    throw new Error(`FakeSqs does not implement ${(command as object).constructor.name}`);
  }
}
