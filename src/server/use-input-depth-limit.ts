import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** Deepest nesting of arrays/objects in a JSON value, counted without recursion. */
function jsonDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (current === null || typeof current !== 'object') continue;
    deepest = Math.max(deepest, depth);
    if (deepest > limit) return deepest;
    for (const child of Object.values(current)) stack.push([child, depth + 1]);
  }
  return deepest;
}

/** Deepest nesting of brackets and braces in a document, ignoring strings and comments. */
function documentDepth(source: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < source.length; i++) {
    const char = source[i];
    if (char === '"') {
      const block = source.startsWith('"""', i);
      const end = block ? source.indexOf('"""', i + 3) : (() => {
        let j = i + 1;
        while (j < source.length && source[j] !== '"') j += source[j] === '\\' ? 2 : 1;
        return j;
      })();
      i = end < 0 ? source.length : end + (block ? 2 : 0);
    } else if (char === '#') {
      const end = source.indexOf('\n', i);
      i = end < 0 ? source.length : end;
    } else if (char === '{' || char === '[' || char === '(') {
      deepest = Math.max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if (char === '}' || char === ']' || char === ')') depth--;
  }
  return deepest;
}

/** Documents whose depth is remembered, and the longest remembered (so the memory stays small). */
const maxMeasured = 1000;
const maxRememberedLength = 8 * 1024;

/**
 * Refuses documents and variables nested deeper than `maxDepth` before they are parsed or coerced:
 * graphql-js and the executor recurse on input values, so a few thousand levels exhaust the stack.
 */
export function useInputDepthLimit(maxDepth: number): Plugin {
  // Clients send the same few documents again and again: each is measured once.
  const measured = new Map<string, boolean>();
  const documentTooDeep = (query: string): boolean => {
    let tooDeep = measured.get(query);
    if (tooDeep === undefined) {
      tooDeep = documentDepth(query, maxDepth) > maxDepth;
      if (query.length > maxRememberedLength) return tooDeep;
      if (measured.size >= maxMeasured) measured.clear();
      measured.set(query, tooDeep);
    }
    return tooDeep;
  };
  return {
    onParams({ params, setResult }) {
      const tooDeep =
        (typeof params.query === 'string' && documentTooDeep(params.query)) ||
        (params.variables !== undefined && jsonDepth(params.variables, maxDepth) > maxDepth);
      if (tooDeep) {
        setResult({
          errors: [new GraphQLError(`the query or its variables nest deeper than ${maxDepth} levels`, { extensions: { code: 'QUERY_TOO_COSTLY', http: { status: 400 } } })],
        });
      }
    },
  };
}
