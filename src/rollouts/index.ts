export { defaultStrategy, RolloutService } from './rollout-service.js';
export type { RolloutObserver, RolloutView } from './rollout-service.js';
