import type { InputObjectRef, InputType } from '@pothos/core';
import type { ComparisonExp } from '../sql/index.js';
import type { Builder, SchemaTypes } from './builder.js';

/** Hasura's `<Type>_comparison_exp`: one input per scalar (or enum), with LIKE operators where `text` is set. */
export function comparisonExp(builder: Builder, name: string, type: InputType<SchemaTypes>, options: { text?: boolean } = {}): InputObjectRef<SchemaTypes, ComparisonExp> {
  const ref = builder.inputType(name, {
    description: `Boolean expression to compare values of type ${name.replace(/_comparison_exp$/, '')}. All given operators must hold.`,
    fields: (t) => ({
      _eq: t.field({ type }),
      _neq: t.field({ type }),
      _gt: t.field({ type }),
      _gte: t.field({ type }),
      _lt: t.field({ type }),
      _lte: t.field({ type }),
      _in: t.field({ type: [type] as [InputType<SchemaTypes>] }),
      _nin: t.field({ type: [type] as [InputType<SchemaTypes>] }),
      _is_null: t.boolean(),
      ...(options.text
        ? {
            _like: t.string({ description: 'SQL LIKE, case-sensitive: % matches any run, _ one character, \\ escapes.' }),
            _nlike: t.string(),
            _ilike: t.string({ description: 'SQL LIKE ignoring ASCII case.' }),
            _nilike: t.string(),
          }
        : {}),
    }),
  });
  return ref as unknown as InputObjectRef<SchemaTypes, ComparisonExp>;
}
