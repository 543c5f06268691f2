/**
 * The agent API: calls an agent sends to the `agent-calls` FIFO queue (MessageGroupId = its
 * agent id) and the commands Meso sends to the agent's own FIFO queue (MessageGroupId
 * `task.<taskId>` for LAUNCH, KILL and ACKNOWLEDGE; `control` for REGISTERED and ERROR).
 */
import { z } from 'zod';
import { AgentId, Attributes, Id, TaskInfoSchema, TaskStatusSchema, WireResourcesSchema } from './common.ts';

const v = z.literal(1);

export const AgentCallSchema = z.discriminatedUnion('type', [
  z
    .object({
      v,
      type: z.literal('REGISTER'),
      /**
       * Chosen by the agent and kept in its work directory; bound to the sender that first
       * registers it. At most 64 characters of [A-Za-z0-9_-]: it names the agent's queue.
       */
      agentId: AgentId,
      hostname: z.string().min(1).max(255),
      resources: WireResourcesSchema,
      attributes: Attributes.default({}),
      /** The agent's own command queue. */
      queueUrl: z.string().url().max(2048),
      agentVersion: z.string().max(64).optional(),
    })
    .strict(),
  z.object({ v, type: z.literal('HEARTBEAT'), agentId: Id }).strict(),
  z.object({ v, type: z.literal('STATUS_UPDATE'), agentId: Id, status: TaskStatusSchema }).strict(),
]);

export const AgentCommandSchema = z.discriminatedUnion('type', [
  z.object({ v, type: z.literal('REGISTERED'), agentId: Id, heartbeatIntervalSeconds: z.number() }).strict(),
  z.object({ v, type: z.literal('LAUNCH'), frameworkId: Id, task: TaskInfoSchema }).strict(),
  z
    .object({
      v,
      type: z.literal('KILL'),
      frameworkId: Id,
      taskId: Id,
      gracePeriodSeconds: z.number().finite().nonnegative().optional(),
    })
    .strict(),
  z.object({ v, type: z.literal('ACKNOWLEDGE'), frameworkId: Id, taskId: Id, uuid: z.string() }).strict(),
  z.object({ v, type: z.literal('ERROR'), message: z.string(), code: z.string() }).strict(),
]);

export type AgentCall = z.infer<typeof AgentCallSchema>;
export type AgentCallInput = z.input<typeof AgentCallSchema>;
export type AgentCommand = z.infer<typeof AgentCommandSchema>;
export type AgentCallOf<T extends AgentCall['type']> = Extract<AgentCall, { type: T }>;
export type AgentCommandOf<T extends AgentCommand['type']> = Extract<AgentCommand, { type: T }>;
export { Attributes, WireResourcesSchema };
