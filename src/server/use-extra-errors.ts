import type { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * Adds `context.extraErrors` to the response: a fleet field keeps the data of the instances that
 * answered, and each instance that failed is reported as its own error beside that data.
 */
export function useExtraErrors(): Plugin<{ extraErrors?: GraphQLError[] }> {
  return {
    onExecute({ args }) {
      return {
        onExecuteDone({ result, setResult }) {
          const extra = (args.contextValue as { extraErrors?: GraphQLError[] }).extraErrors;
          if (extra === undefined || extra.length === 0 || !('data' in result)) return;
          setResult({ ...result, errors: [...(result.errors ?? []), ...extra] });
        },
      };
    },
  };
}
