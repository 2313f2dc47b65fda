export { fanOut } from './fan-out.js';
export type { FanOutOptions, FanOutResult, FanOutTask } from './fan-out.js';
export { FleetService } from './fleet-service.js';
export { RecentQuestions } from './recent-questions.js';
export type { FanOutObserver, FleetAnswer, FleetFieldKind, FleetLimits, FleetScope, FleetSelectArgs } from './fleet-service.js';
