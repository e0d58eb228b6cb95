import pino from 'pino';

/**
 * The service's logger: pino JSON lines on stdout (journald keeps them), one structured line
 * per pass that changed something. Tests pass `pino({ level: 'silent' })` or a capturing stream.
 */
export type Logger = pino.Logger;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel = 'info', destination?: pino.DestinationStream): Logger {
  return pino({ name: 'xmem', level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
