/**
 * What every route plugin is given (STYLE §7: dependencies arrive as plugin options, never as
 * globals or decorators).
 */
import type { AgentApi } from '../agent/agent-api.js';
import type { EndpointRegistry } from './endpoints.js';
import type { HttpSettings } from './settings.js';

/** Options of every route plugin. */
export interface RouteDeps {
  /** The agent the routes read from and write through. */
  readonly agent: AgentApi;
  /** Where the plugin registers its endpoints (for 405s and subtree redirects). */
  readonly registry: EndpointRegistry;
  /** Validated HTTP settings. */
  readonly settings: HttpSettings;
}
