export { seedDemoFleet, seededRandom } from './seed-demo-fleet.js';
export type { DemoSeedResult } from './seed-demo-fleet.js';
