import type { Labels } from '../catalog/index.js';
import { FleetqlError } from '../errors.js';

export const labelLimits = { maxLabels: 64, maxKeyLength: 63, maxValueLength: 256 } as const;
const keyPattern = /^[a-z0-9]([a-z0-9._/-]*[a-z0-9])?$/i;

function invalid(why: string): FleetqlError {
  return new FleetqlError('INVALID_LABELS', `invalid labels: ${why}`);
}

/** Labels are a flat object of short strings, e.g. `{ "org": "acme", "region": "fra" }`. */
export function parseLabels(raw: unknown): Labels {
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalid('they must be an object of string values');
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length > labelLimits.maxLabels) throw invalid(`at most ${labelLimits.maxLabels} labels are allowed`);
  const labels: Record<string, string> = {};
  for (const [key, value] of entries) {
    if (key.length > labelLimits.maxKeyLength || !keyPattern.test(key)) {
      throw invalid(`key "${key.slice(0, 80)}" must be 1-${labelLimits.maxKeyLength} letters, digits, ".", "_", "/" or "-", starting and ending with a letter or digit`);
    }
    if (typeof value !== 'string') throw invalid(`the value of "${key}" must be a string`);
    if (value.length > labelLimits.maxValueLength) throw invalid(`the value of "${key}" is longer than ${labelLimits.maxValueLength} characters`);
    if (/[\u0000-\u001f]/.test(value)) throw invalid(`the value of "${key}" contains control characters`);
    labels[key] = value;
  }
  return labels;
}
