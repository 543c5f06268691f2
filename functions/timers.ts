// Lambda entry: timers (offer expiry, filter expiry; timers queue). Implemented in lib/control.
export const handler = async (): Promise<{ batchItemFailures: { itemIdentifier: string }[] }> => ({ batchItemFailures: [] });
