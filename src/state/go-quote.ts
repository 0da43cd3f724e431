/** Go's %q quoting lives in src/lib (errors across layers use it); the state machine re-exports it. */
export * from '../lib/go-quote.js';
