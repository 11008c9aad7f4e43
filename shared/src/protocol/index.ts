export * from './state.ts';
export * from './digest.ts';
export * from './messages.ts';
