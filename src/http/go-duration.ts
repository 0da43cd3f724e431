/** Go's duration syntax lives in src/lib (the agent's config parses it too); HTTP re-exports it. */
export * from '../lib/go-duration.js';
