// Lambda entry: the registry (scheduler-calls and agent-calls queues). Implemented in lib/control.
export const handler = async (): Promise<{ batchItemFailures: { itemIdentifier: string }[] }> => ({ batchItemFailures: [] });
