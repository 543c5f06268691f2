/** The Meso framework SDK. */
export * from './calls.ts';
export * from './command.ts';
export * from './constants.ts';
export * from './dedup.ts';
export * from './errors.ts';
export * from './offers.ts';
export * from './run-task.ts';
export * from './scheduler.ts';
export * from './task-state.ts';
export * from './transport.ts';
export type * from './types.ts';
