import { z } from 'zod';
import { parseDuration } from '../core/duration.js';

/** A duration as users write it (`90d`, `12h`, `P90D`), validated at the edge and parsed where used. */
export const durationText = z.string().refine((v) => {
  try {
    parseDuration(v);
    return true;
  } catch {
    return false;
  }
}, 'not a duration; use e.g. 90d, 12h, 30m or P90D');
