/**
 * How many requests a fresh fleetql server needs before its warm fleet aggregate reaches its
 * steady time, as a ratio to the raw loop (paired: each timed request is followed by a pass of the
 * raw loop, kept running in its own process). Why bench/run.ts sends untimed requests before it
 * times warm ones: a fresh process runs a request's path unoptimized for a few dozen requests.
 *
 *   npx tsx bench/warm-up.ts [--size 1000] [--servers 4] [--marks 1,5,10,20,40,80] [--pairs 3]
 */
import { parseArgs } from 'node:util';
import { fleetOf } from './lib/fleet.js';
import { gql, median, timed } from './lib/load.js';
import { buildFleetql, startFleetql, startRawPasses } from './lib/processes.js';
import { fleetAggregate } from './lib/queries.js';

const { values: args } = parseArgs({ options: { size: { type: 'string', default: '1000' }, servers: { type: 'string', default: '4' }, marks: { type: 'string', default: '1,5,10,20,40,80' }, pairs: { type: 'string', default: '3' } } });
const log = (line: string) => process.stderr.write(`${line}\n`);
const marks = args.marks.split(',').map(Number);
const pairs = Number(args.pairs);

buildFleetql(log);
const fleet = await fleetOf(Number(args.size), log);
const raw = await startRawPasses({ aggregate: { query: 'aggregate', files: fleet.files } });
const ratios = new Map<number, number[]>(marks.map((mark) => [mark, []]));
try {
  for (let server = 0; server < Number(args.servers); server++) {
    const fq = await startFleetql(fleet.dataDir);
    try {
      let served = 0;
      for (const mark of marks) {
        for (; served < mark; served++) await gql(fq.url, fleetAggregate());
        for (let i = 0; i < pairs; i++, served++) {
          const own = (await timed(fq.url, fleetAggregate())).ms;
          ratios.get(mark)!.push(own / (await raw.pass('aggregate')).ms);
        }
      }
    } finally {
      await fq.stop();
    }
  }
} finally {
  await raw.stop();
}
const line = marks.map((mark) => `after ${mark} requests: ${median(ratios.get(mark)!).toFixed(2)}×`).join(', ');
process.stdout.write(`fleet aggregate over ${fleet.size} instances, fresh server, ratio to the raw loop (median of ${Number(args.servers) * pairs} pairs): ${line}\n`);
