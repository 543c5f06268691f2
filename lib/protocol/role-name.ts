/** Role names, shared by the protocol's schemas and the core's resource accounting. */

/** The role of unreserved resources. Reserving for it means nothing: `cpus(*):1` is `cpus:1`. */
export const ANY_ROLE = '*';

/**
 * Why `role` is not a valid role name, or undefined when it is. Mesos's rules: `*` (the default
 * role) or `/`-separated segments, none empty, `.` or `..`, none starting with `-`, no
 * whitespace, backslash or parentheses (they would break the `cpus(role):1` syntax), at most
 * 256 characters.
 */
export function roleNameProblem(role: string): string | undefined {
  if (role === ANY_ROLE) return undefined;
  if (role.length === 0) return 'it is empty';
  if (role.length > 256) return 'it is longer than 256 characters';
  if (/[\s\\()*,;:[\]]/.test(role)) return 'it contains whitespace or one of \\ ( ) * , ; : [ ]';
  for (const seg of role.split('/')) {
    if (seg === '') return 'it has an empty path segment (leading, trailing or double /)';
    if (seg === '.' || seg === '..') return `it has a "${seg}" path segment`;
    if (seg.startsWith('-')) return 'a path segment starts with -';
  }
  return undefined;
}
