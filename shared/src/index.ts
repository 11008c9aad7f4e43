export * from './ip/ipv4.ts';
export * from './commands/index.ts';
export * from './protocol/index.ts';
export * from './echo.ts';
export * from './shell.ts';
