import { describe, expect, it } from 'vitest';
import { createLogger } from './log.ts';

function capture() {
  const lines: Record<string, unknown>[] = [];
  return { lines, destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } };
}

describe('the executor log', () => {
  it('writes the fields the controller writes: level, time, pid, hostname, msg', () => {
    const { lines, destination } = capture();
    createLogger({}, destination).info({ jobId: 7 }, 'ran a job');
    expect(lines).toEqual([{ level: 30, time: expect.any(Number), pid: process.pid, hostname: expect.any(String), jobId: 7, msg: 'ran a job' }]);
  });

  it('never writes the host token, wherever a caller put it', () => {
    const { lines, destination } = capture();
    const log = createLogger({}, destination);
    log.warn({ token: 'cdh_secret-1', authorization: 'Bearer cdh_secret-2' }, 'a');
    log.warn({ options: { token: 'cdh_secret-3' }, request: { headers: { authorization: 'Bearer cdh_secret-4' } } }, 'b');
    expect(JSON.stringify(lines)).not.toContain('cdh_secret');
    expect(lines[0]).toMatchObject({ token: '[Redacted]', authorization: '[Redacted]' });
    expect(lines[1]).toMatchObject({ options: { token: '[Redacted]' }, request: { headers: { authorization: '[Redacted]' } } });
  });

  it('stays quiet below its level', () => {
    const { lines, destination } = capture();
    createLogger({ level: 'warn' }, destination).info('not written');
    expect(lines).toEqual([]);
  });
});
