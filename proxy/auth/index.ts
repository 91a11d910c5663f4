// Public API of authentication: SCRAM-SHA-256 and md5, server and client sides.
export * from './errors.js';
export * from './scram.js';
export * from './md5.js';
