// Lambda entry: the minute-level sweep (agent liveness, framework heartbeats), run by a scheduled rule.
export const handler = async (): Promise<void> => {};
