export { defaultStrategy, RolloutService } from './rollout-service.js';
export type { RolloutView } from './rollout-service.js';
