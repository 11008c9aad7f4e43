export * from './schema.ts';
export * from './validate.ts';
export * from './render.ts';
