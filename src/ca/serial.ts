/**
 * Certificate serial numbers: positive, at most 20 octets, unpredictable (RFC 5280 §4.1.2.2; CA/B BR §7.1
 * asks for ≥ 64 random bits, keywright draws 128). Randomness is injected so tests can fix serials.
 */
import { randomFillSync } from 'node:crypto';
import { ValidationError } from '../core/errors.js';
import { unsignedIntegerContent } from '../pki/der.js';

export type RandomSource = (size: number) => Buffer;

export const SERIAL_RANDOM_BYTES = 16;

// One CSPRNG call per 256 serials instead of one per serial: at thousands of certificates per second the
// per-call overhead of randomBytes(16) is measurable. Bytes handed out are never reused.
const pool = Buffer.alloc(SERIAL_RANDOM_BYTES * 256);
let poolPos = pool.length;

function pooledRandom(size: number): Buffer {
  if (size > pool.length) return randomFillSync(Buffer.alloc(size));
  if (poolPos + size > pool.length) {
    randomFillSync(pool);
    poolPos = 0;
  }
  const out = Buffer.from(pool.subarray(poolPos, poolPos + size));
  pool.fill(0, poolPos, poolPos + size);
  poolPos += size;
  return out;
}

/** INTEGER content octets of a fresh random positive serial. */
export function randomSerial(random: RandomSource = pooledRandom): Buffer {
  for (;;) {
    const content = unsignedIntegerContent(random(SERIAL_RANDOM_BYTES));
    if (content.some((b) => b !== 0)) return content;
  }
}

/** INTEGER content octets of a serial given as its magnitude (bytes) or lowercase/uppercase hex. */
export function serialContent(serial: Uint8Array | string): Buffer {
  let magnitude: Uint8Array;
  if (typeof serial === 'string') {
    const hex = serial.replace(/:/g, '');
    if (!/^[0-9a-f]+$/i.test(hex)) {
      throw new ValidationError('INVALID_ARGUMENT', `serial "${serial}" is not hexadecimal`, {
        details: { field: 'serial' },
      });
    }
    magnitude = Buffer.from(hex.length % 2 ? '0' + hex : hex, 'hex');
  } else {
    magnitude = serial;
  }
  return unsignedIntegerContent(magnitude);
}
