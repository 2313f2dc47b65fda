/**
 * Named points between the steps of a journaled operation. When FLEETQL_CRASH_AT names one, the
 * process kills itself with SIGKILL there, so tests prove crash safety by crashing, not by argument.
 * Unset (always, outside such tests) this costs one Set lookup.
 */
const armed = new Set((process.env['FLEETQL_CRASH_AT'] ?? '').split(',').filter((name) => name.length > 0));

export type CrashPoint =
  | 'create:journaled'
  | 'create:file-built'
  | 'create:file-placed'
  | 'create:committed'
  | 'destroy:journaled'
  | 'destroy:file-moved'
  | 'destroy:file-removed'
  | 'destroy:committed';

/** The steps of retiring an instance into an archive (archive_instance retire, destroy with archive). */
export type RetireCrashPoint = 'retire:journaled' | 'retire:archived' | 'retire:marked' | 'retire:file-removed';

/**
 * A rollout about to record settled instances (their files are migrated, the catalog does not say
 * so yet); an instance's migrated copy made and its snapshot link in place, the copy not yet
 * renamed over the live file.
 */
export type RolloutCrashPoint = 'rollout:recording' | 'rollout:swapping';

export function crashPoint(name: CrashPoint | RetireCrashPoint | RolloutCrashPoint): void {
  if (armed.has(name)) process.kill(process.pid, 'SIGKILL');
}
