/**
 * An agent of the local stack kept running: its log is prefixed with its name, its first
 * registration is awaited, and when it dies (a crash, a kill -9) the stack says so and starts it
 * again on the same work directory, where it recovers its tasks. One that keeps dying is left
 * down, saying why, rather than restarted forever.
 */
import type { ChildProcess } from 'node:child_process';

export interface KeptAgentOptions {
  /** `agent-0`: the prefix of its lines. */
  readonly name: string;
  /** Starts the agent process (stderr piped). */
  readonly spawn: () => ChildProcess;
  /** Where the stack's own lines go. */
  readonly say: (line: string) => void;
  /** Where the agent's log lines go (prefixed). Default: this process's stderr. */
  readonly log?: (text: string) => void;
  /** Restarts allowed within `windowMs` before giving up (default 5 in 60 s). */
  readonly maxRestarts?: number;
  readonly windowMs?: number;
  /** Before each restart (default 1 s, so a crash loop does not spin). */
  readonly restartDelayMs?: number;
  /** After SIGTERM on stop, SIGKILL follows this much later (default 10 s). */
  readonly killAfterMs?: number;
}

export class KeptAgent {
  /** Resolves at the first registration, or when the first process exits without one. */
  readonly firstRegistration: Promise<void>;
  #child!: ChildProcess;
  #stopping = false;
  #gaveUp = false;
  #restarts: number[] = [];
  #timer: NodeJS.Timeout | undefined;
  #registeredOnce!: () => void;
  readonly #o: KeptAgentOptions;

  constructor(o: KeptAgentOptions) {
    this.#o = o;
    this.firstRegistration = new Promise((r) => {
      this.#registeredOnce = r;
    });
    this.#start();
  }

  /** The current process (a new one after each restart). */
  get process(): ChildProcess {
    return this.#child;
  }

  /** How many times it was restarted. */
  get restarts(): number {
    return this.#restarts.length;
  }

  #start(): void {
    const { name } = this.#o;
    const log = this.#o.log ?? ((t: string) => process.stderr.write(t));
    const child = this.#o.spawn();
    this.#child = child;
    child.stderr?.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      log(text.replace(/^(?=.)/gm, `[${name}] `));
      if (/registered/i.test(text)) this.#registeredOnce();
    });
    child.once('exit', (code, signal) => this.#exited(code, signal));
  }

  #exited(code: number | null, signal: NodeJS.Signals | null): void {
    this.#registeredOnce();
    if (this.#stopping) return;
    const { name, say } = this.#o;
    const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
    const now = Date.now();
    const windowMs = this.#o.windowMs ?? 60_000;
    const recent = this.#restarts.filter((t) => now - t < windowMs);
    if (recent.length >= (this.#o.maxRestarts ?? 5)) {
      this.#gaveUp = true;
      say(
        `[${name}] the agent ${how} (${recent.length + 1} times within ${windowMs / 1000} s); ` +
          'not restarting it (its log is above). Ctrl-C stops the rest.',
      );
      return;
    }
    this.#restarts.push(now);
    say(`[${name}] the agent ${how}; restarting it (its tasks are recovered from its work directory)`);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#stopping) this.#start();
    }, this.#o.restartDelayMs ?? 1000);
  }

  /** Whether it was left down after dying too often. */
  get gaveUp(): boolean {
    return this.#gaveUp;
  }

  /** Stops it for good: SIGTERM, then SIGKILL if it lingers. Resolves once it has exited. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#timer);
    const child = this.#child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((exited) => {
      child.once('exit', () => exited());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), this.#o.killAfterMs ?? 10_000).unref();
    });
  }
}
