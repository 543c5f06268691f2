/**
 * The command a task runs, as Mesos's CommandInfo: a string runs through `sh -c` (shell), an
 * argv array runs the executable directly (no shell), `arguments` holding the whole argv with
 * argv[0] (as Mesos does).
 */
import type { z } from 'zod';
import type { CommandInfoSchema } from '../protocol/common.ts';
import { InvalidCallError } from './errors.ts';

export type CommandInput = z.input<typeof CommandInfoSchema>;

/**
 * @example
 * ```ts
 * commandInfo('echo $HOME');            // { shell: true, value: 'echo $HOME' }
 * commandInfo(['sh', '-c', 'echo hi']); // { shell: false, value: 'sh', arguments: ['sh', '-c', 'echo hi'] }
 * ```
 */
export function commandInfo(
  command: string | readonly string[],
  opts: { env?: Readonly<Record<string, string>>; user?: string } = {},
): CommandInput {
  const extra = {
    ...(opts.env && Object.keys(opts.env).length > 0 ? { environment: { ...opts.env } } : {}),
    ...(opts.user !== undefined ? { user: opts.user } : {}),
  };
  if (typeof command === 'string') {
    if (command.trim() === '') throw new InvalidCallError('the command is empty');
    return { shell: true, value: command, ...extra };
  }
  const [executable] = command;
  if (executable === undefined || executable === '') throw new InvalidCallError('the command is empty');
  return { shell: false, value: executable, arguments: [...command], ...extra };
}

/** For messages: a shell command as is, an argv with its words quoted where needed. */
export function describeCommand(command: string | readonly string[]): string {
  if (typeof command === 'string') return command;
  return command
    .map((w) => (/^[A-Za-z0-9_./:=@%+,-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}
