// Lambda entry: the allocator (allocator queue). Implemented in lib/control.
export const handler = async (): Promise<{ batchItemFailures: { itemIdentifier: string }[] }> => ({ batchItemFailures: [] });
