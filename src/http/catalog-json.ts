/**
 * Catalog and health rows in Consul's JSON shapes (consul-api.md §11 Node, §12 HealthCheck), with
 * the field order Consul writes. Built field by field rather than passed through, so a row that
 * crossed msgpack (a forwarded read) prints exactly like a local one.
 */
import type { CatalogNode, HealthCheck } from '../state/catalog.js';

/** A catalog Node (§11). */
export function nodeJson(node: CatalogNode): Record<string, unknown> {
  return {
    ID: node.ID,
    Node: node.Node,
    Address: node.Address,
    Datacenter: node.Datacenter,
    TaggedAddresses: { ...node.TaggedAddresses },
    Meta: { ...node.Meta },
    CreateIndex: node.CreateIndex,
    ModifyIndex: node.ModifyIndex,
  };
}

/**
 * A HealthCheck (§12). `Definition` is `{}`: checks registered through the catalog or by the
 * leader (serfHealth) have no definition; `ExposedPort` is 0 without Connect.
 */
export function healthCheckJson(check: HealthCheck): Record<string, unknown> {
  return {
    Node: check.Node,
    CheckID: check.CheckID,
    Name: check.Name,
    Status: check.Status,
    Notes: check.Notes,
    Output: check.Output,
    ServiceID: check.ServiceID,
    ServiceName: check.ServiceName,
    ServiceTags: [...check.ServiceTags],
    Type: check.Type,
    Interval: check.Interval,
    Timeout: check.Timeout,
    ExposedPort: 0,
    Definition: {},
    CreateIndex: check.CreateIndex,
    ModifyIndex: check.ModifyIndex,
  };
}
