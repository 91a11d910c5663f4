// Public API of the backend area: authenticated connections to Postgres servers and cancel requests.
export * from './errors.js';
export * from './server-connection.js';
