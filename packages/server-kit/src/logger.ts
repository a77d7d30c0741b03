import { type Logger, pino } from 'pino';

export type { Logger } from 'pino';

/**
 * pino JSON lines. Tokens never reach a log line: authorization headers and token-bearing
 * fields are redacted, and request logging records paths without query strings.
 */
export function createLogger(options: { name: string; level?: string }): Logger {
  return pino({
    name: options.name,
    level: options.level ?? 'info',
    base: { service: options.name },
    redact: {
      paths: [
        'token',
        'authorization',
        'headers.authorization',
        'req.headers.authorization',
        '*.token',
        'secret',
      ],
      censor: '[redacted]',
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
