/** Offer ids name their agent (`<uuid>@<agentId>`) so an ACCEPT finds the agent row in one read. */
export const offerId = (uuid: string, agentId: string): string => `${uuid}@${agentId}`;

/** The agent an offer id names, or undefined when it names none. */
export function agentOfOffer(id: string): string | undefined {
  const at = id.indexOf('@');
  return at > 0 && at < id.length - 1 ? id.slice(at + 1) : undefined;
}
