import type { InputObjectRef } from '@pothos/core';
import { GraphQLScalarType, Kind } from 'graphql';
import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import { FleetqlError } from '../errors.js';
import { orderDirections, type ComparisonExp, type OrderDirection } from '../sql/index.js';
import type { Builder, SchemaTypes } from './builder.js';
import { comparisonExp } from './comparison-exp.js';
import { BigIntScalar } from './scalars.js';

const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function parseBase64(value: unknown): string {
  if (typeof value !== 'string' || !base64.test(value)) throw new FleetqlError('INVALID_ARGUMENT', 'Base64 takes standard base64 text');
  return value;
}

const Base64Scalar = new GraphQLScalarType<string, string>({
  name: 'Base64',
  description: 'Bytes (a BLOB column) as standard base64 text.',
  serialize: (value) => String(value),
  parseValue: parseBase64,
  parseLiteral: (ast) => parseBase64(ast.kind === Kind.STRING ? ast.value : undefined),
});

export type ScalarName = 'BigInt' | 'Int' | 'Float' | 'String' | 'Boolean' | 'Base64' | 'JSON' | 'DateTime';

export interface SharedTypes {
  OrderBy: PothosSchemaTypes.EnumRef<SchemaTypes, OrderDirection>;
  PageInfo: PothosSchemaTypes.ObjectRef<SchemaTypes, { hasNextPage: boolean; endCursor: string | null }>;
  Coverage: PothosSchemaTypes.ObjectRef<SchemaTypes, { targeted: number; answered: number; failed: number }>;
  /** `<Scalar>_comparison_exp`, made once per scalar. */
  comparison(scalar: ScalarName): InputObjectRef<SchemaTypes, ComparisonExp>;
}

/** Scalars, `order_by`, `PageInfo` and comparison inputs, shared by the admin API and the data API. */
export function registerSharedTypes(builder: Builder): SharedTypes {
  builder.addScalarType('JSON', JSONResolver);
  builder.addScalarType('DateTime', DateTimeResolver);
  builder.addScalarType('BigInt', BigIntScalar);
  builder.addScalarType('Base64', Base64Scalar);
  const OrderBy = builder.enumType('order_by', {
    description: 'Sort direction. Plain asc puts nulls last and desc puts them first, as in PostgreSQL.',
    values: orderDirections,
  }) as unknown as PothosSchemaTypes.EnumRef<SchemaTypes, OrderDirection>;
  const PageInfo = builder.objectRef<{ hasNextPage: boolean; endCursor: string | null }>('PageInfo').implement({
    fields: (t) => ({
      hasNextPage: t.exposeBoolean('hasNextPage'),
      endCursor: t.exposeString('endCursor', { nullable: true }),
    }),
  });
  const Coverage = builder.objectRef<{ targeted: number; answered: number; failed: number }>('coverage').implement({
    description: 'How complete an answer is: instances asked, instances that answered, instances that failed (each failure is also in errors).',
    fields: (t) => ({ targeted: t.exposeInt('targeted'), answered: t.exposeInt('answered'), failed: t.exposeInt('failed') }),
  });
  const comparisons = new Map<ScalarName, InputObjectRef<SchemaTypes, ComparisonExp>>();
  return {
    OrderBy,
    PageInfo,
    Coverage,
    comparison(scalar) {
      let ref = comparisons.get(scalar);
      if (ref === undefined) {
        ref = comparisonExp(builder, `${scalar}_comparison_exp`, scalar, { text: scalar === 'String' });
        comparisons.set(scalar, ref);
      }
      return ref;
    },
  };
}
