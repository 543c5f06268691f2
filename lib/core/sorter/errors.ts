/** A sorter used wrongly (unknown client, duplicate add, bad weight): a bug in the caller. */
export class SorterError extends Error {
  override name = 'SorterError';
}
