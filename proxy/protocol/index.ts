// Public API of the wire-protocol codec: framing, parsing and building of frontend and backend messages.
export * from './errors.js';
export * from './frontend-reader.js';
export * from './frontend-messages.js';
export * from './frontend-writer.js';
export * from './backend-scanner.js';
export * from './backend-writer.js';
