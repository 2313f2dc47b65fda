import { setImmediate as nextTurn } from 'node:timers/promises';
import type { InstanceService } from '../instances/index.js';

/** Deterministic pseudo-random numbers (mulberry32), so every demo fleet is the same fleet. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const orgs = [
  { org: 'acme', plan: 'enterprise', apps: ['api', 'web', 'worker', 'billing', 'search', 'auth', 'cron', 'mail'] },
  { org: 'globex', plan: 'pro', apps: ['shop', 'cart', 'checkout', 'catalog', 'images', 'reviews', 'ads', 'feeds'] },
  { org: 'initech', plan: 'free', apps: ['tps', 'reports', 'intranet', 'printers', 'ledger', 'hr', 'wiki', 'chat'] },
];
const regions = ['fra', 'iad'];
const states = ['started', 'started', 'started', 'started', 'stopped', 'stopped', 'failed', 'created'] as const;
const images = ['registry.fleetql.dev/app:1.4.2', 'registry.fleetql.dev/app:1.5.0', 'registry.fleetql.dev/worker:0.9.1', 'docker.io/library/nginx:1.27'];
const sizes = [
  { cpu_kind: 'shared', cpus: 1, memory_mb: 256 },
  { cpu_kind: 'shared', cpus: 1, memory_mb: 512 },
  { cpu_kind: 'shared', cpus: 2, memory_mb: 1024 },
  { cpu_kind: 'performance', cpus: 2, memory_mb: 4096 },
  { cpu_kind: 'performance', cpus: 4, memory_mb: 8192 },
] as const;

export interface DemoSeedResult {
  instances: number;
  machines: number;
  events: number;
}

/**
 * Seeds 48 instances (3 orgs × 8 apps × 2 regions) labelled org/region/plan, each holding a few
 * machines with their events. Rows are written only when the demo tables exist, so the demo also
 * works (with empty instances) on a user's own migrations.
 */
export async function seedDemoFleet(instances: InstanceService, epoch = Date.parse('2026-01-01T00:00:00Z')): Promise<DemoSeedResult> {
  const next = seededRandom(20260101);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const result: DemoSeedResult = { instances: 0, machines: 0, events: 0 };
  for (const { org, plan, apps } of orgs) {
    for (const app of apps) {
      for (const region of regions) {
        const id = `${org}-${app}-${region}`;
        // The driver is synchronous: yield so /healthz and /readyz answer while the demo is seeded.
        await nextTurn();
        await instances.create(id, { org, region, plan, app });
        result.instances += 1;
        await instances.withInstance(id, (db) => {
          const hasTables = db.get(`SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name IN ('machines', 'machine_events')`);
          if (Number((hasTables as { n: bigint }).n) !== 2) return;
          db.transaction(() => {
            const machineCount = 3 + Math.floor(next() * 10);
            for (let m = 0; m < machineCount; m++) {
              const created = epoch + Math.floor(next() * 300 * 86_400_000);
              const state = pick(states);
              const size = pick(sizes);
              const machineId = `${app}-${region}-${(m + 1).toString(36).padStart(3, '0')}${Math.floor(next() * 46656).toString(36).padStart(3, '0')}`;
              const updated = created + Math.floor(next() * 20 * 86_400_000);
              db.run(
                `INSERT INTO machines (id, name, state, region, cpu_kind, cpus, memory_mb, image, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
                [machineId, `${app}-${m + 1}`, state, region, size.cpu_kind, size.cpus, size.memory_mb, pick(images), new Date(created).toISOString(), new Date(updated).toISOString()],
              );
              result.machines += 1;
              const eventCount = 2 + Math.floor(next() * 5);
              for (let e = 0; e < eventCount; e++) {
                const type = e === 0 ? 'create' : pick(['start', 'stop', 'restart', 'update', 'exit']);
                const status = state === 'failed' && e === eventCount - 1 ? 'failed' : 'ok';
                const at = created + Math.floor(((updated - created) * e) / eventCount);
                db.run(`INSERT INTO machine_events (machine_id, type, status, at) VALUES (?, ?, ?, ?)`, [machineId, type, status, new Date(at).toISOString()]);
                result.events += 1;
              }
            }
          });
        });
      }
    }
  }
  return result;
}
