import { pino, type Logger as PinoLogger } from 'pino';

/**
 * The daemon's logger. Redaction is a second line of defence: code never logs secrets, and if a header
 * or field that can hold one slips into a log object it is censored here.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.authorization',
  'token',
  '*.token',
  '*.privateKey',
  '*.passphrase',
  '*.password',
  '*.secret',
  '*.psk',
  '*.key',
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): PinoLogger {
  return pino(
    {
      level,
      base: { service: 'keywright' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pino.destination({ fd: 2, sync: false }),
  );
}
