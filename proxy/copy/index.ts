// Public API of sharded COPY: formats, row framing, splitting by key, and the multi-shard COPY FROM driver.
export * from './copy-format.js';
export * from './row-framer.js';
export * from './key-field.js';
export * from './key-hash.js';
export * from './copy-splitter.js';
export * from './sharded-copy-in.js';
export * from './copy-in-plan.js';
export * from './copy-out-merge.js';
