/**
 * The `meso` CLI: `meso run`, `meso dev`. Run it with `npx meso …` (through bin/meso.js) or
 * `npx tsx bin/meso.ts …`.
 */
import { runProgram } from '../lib/cli/program.ts';

process.exitCode = await runProgram(process.argv.slice(2));
