/**
 * A DateTime as Prisma's migrate engine and its SQLite adapter store it
 * (`2026-11-29T22:43:50.174+00:00`), for rows and records written without Prisma's client.
 */
export function prismaTimestamp(date: Date = new Date()): string {
  return date.toISOString().replace('Z', '+00:00');
}
