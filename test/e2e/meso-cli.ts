/**
 * `meso …` as a user types it, in-process: the program with injected dependencies, stdout and
 * stderr captured together. For the built-in frameworks' tests.
 */
import { type ProgramDeps, runProgram } from '../../lib/cli/program.ts';

export function mesoCli(deps: () => Omit<ProgramDeps, 'io'>) {
  return async (...args: string[]): Promise<{ code: number; out: string }> => {
    const out: string[] = [];
    const io = {
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => out.push(t) },
      onInterrupt: () => () => {},
      exit: (c: number): never => {
        throw new Error(`exit ${c}`);
      },
    };
    const code = await runProgram(args, { io, ...deps() });
    return { code, out: out.join('') };
  };
}
