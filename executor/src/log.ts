// The executor's log: pino, as the controller's (Fastify's) is, so both write the same fields
// (level, time, pid, hostname, msg). The host token never reaches it, whatever a caller passes.
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

/** What the agent logs with: pino's own calls, fields first, then the message. */
export type Logger = Pick<PinoLogger, 'info' | 'warn' | 'error'>;

/** Fields that may carry the host token (a token, an Authorization header), at any of the first levels. */
const REDACTED_PATHS = ['token', 'authorization', '*.token', '*.authorization', '*.headers.authorization'];

/** Writes to stdout unless given somewhere else (tests). */
export function createLogger(options: { level?: string } = {}, destination?: DestinationStream): PinoLogger {
  const settings = { level: options.level ?? 'info', redact: REDACTED_PATHS };
  return destination ? pino(settings, destination) : pino(settings);
}

/** For tests: logs nothing. */
export const silentLogger: Logger = pino({ level: 'silent' });
