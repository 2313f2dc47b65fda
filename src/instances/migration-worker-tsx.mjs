// Under tsx (npm start, the tests) a worker thread does not inherit the TypeScript loader on Node 20:
// this registers it in the worker, then loads the worker's source. Built code uses migration-worker.js.
import { register } from 'tsx/esm/api';

register();
const worker = await import('./migration-worker.ts');
export const { ready, migrate, restore, prepareSnapshots } = worker;
