import type { SqlText } from './plan.js';

/** Longest text written into a statement: a longer one stays bound (the SQL text keys each handle's statement cache). */
const maxInlinedText = 256;

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * `value` as an SQL literal that SQLite reads as exactly the value the driver would bind, or
 * undefined. Text, 64-bit integers and NULL have one; numbers do not (the driver binds every JS
 * number as REAL, and a REAL's decimal text is not read back bit for bit in every case), nor do
 * text with NUL (the statement text would end there) or with lone surrogates.
 */
function literalOf(value: unknown): string | undefined {
  if (value === null) return 'NULL';
  if (typeof value === 'string') {
    if (value.length > maxInlinedText || value.includes('\u0000') || loneSurrogate.test(value)) return undefined;
    return `'${value.replaceAll("'", "''")}'`;
  }
  if (typeof value === 'bigint') {
    if (value > 9223372036854775807n || value < -9223372036854775808n) return undefined;
    // 9223372036854775808 alone would be read as REAL before the minus applies.
    if (value === -9223372036854775808n) return '(-9223372036854775807 - 1)';
    // In parentheses, so that a minus after an operator never makes a comment (`x--5`).
    return value < 0n ? `(${value})` : String(value);
  }
  return undefined;
}

/**
 * The statement with its parameters written into its text as literals where that is exact (see
 * literalOf), the others still bound, in order. The driver binds each parameter on every run,
 * about a tenth of a warm one-row read, so a fleet question asked again is asked inlined (see
 * fleet/recent-questions.ts). Placeholders are the `?` outside quoted text and identifiers;
 * anything unexpected (a comment, a numbered parameter, a count that does not match) leaves the
 * statement as it is.
 */
export function inlineLiterals(text: SqlText): SqlText {
  const { sql, params } = text;
  const kept: unknown[] = [];
  let out = '';
  let from = 0;
  let next = 0;
  for (let i = 0; i < sql.length; i++) {
    const char = sql[i]!;
    if (char === "'" || char === '"' || char === '`' || char === '[') {
      // A doubled quote inside ends one quoted run and starts the next: the same text.
      i = sql.indexOf(char === '[' ? ']' : char, i + 1);
      if (i < 0) return text;
      continue;
    }
    if ((char === '-' && sql[i + 1] === '-') || (char === '/' && sql[i + 1] === '*')) return text;
    if (char !== '?') continue;
    if (/[0-9]/.test(sql[i + 1] ?? '')) return text;
    if (next >= params.length) return text;
    const value = params[next++];
    const literal = literalOf(value);
    if (literal === undefined) {
      kept.push(value);
      continue;
    }
    out += sql.slice(from, i) + literal;
    from = i + 1;
  }
  if (next !== params.length || kept.length === params.length) return text;
  return { sql: out + sql.slice(from), params: kept };
}
