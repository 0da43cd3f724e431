/**
 * Catalog and health rows in Consul's JSON shapes (consul-api.md §11 Node, §12 HealthCheck), with
 * the field order Consul writes. Built field by field rather than passed through, so a row that
 * crossed msgpack (a forwarded read) prints exactly like a local one.
 */
import type { CatalogNode, CatalogService, HealthCheck } from '../state/catalog.js';

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

/** Consul's empty `Proxy` of a service that is not a Connect proxy (structs.ConnectProxyConfig). */
function emptyProxy(): Record<string, unknown> {
  return { Mode: '', MeshGateway: {}, Expose: {} };
}

/** A NodeService (§11: `/v1/catalog/node/<n>` Services, `/v1/health/service/<s>` Service). */
export function nodeServiceJson(service: CatalogService): Record<string, unknown> {
  return {
    ID: service.ID,
    Service: service.Service,
    Tags: [...service.Tags],
    Address: service.Address,
    Meta: { ...service.Meta },
    Port: service.Port,
    Weights: { Passing: service.Weights.Passing, Warning: service.Weights.Warning },
    EnableTagOverride: service.EnableTagOverride,
    Proxy: emptyProxy(),
    Connect: {},
    CreateIndex: service.CreateIndex,
    ModifyIndex: service.ModifyIndex,
  };
}

/** A ServiceNode (§11: `/v1/catalog/service/<s>`): the node's fields, then the service's. */
export function serviceNodeJson(node: CatalogNode, service: CatalogService): Record<string, unknown> {
  return {
    ID: node.ID,
    Node: node.Node,
    Address: node.Address,
    Datacenter: node.Datacenter,
    TaggedAddresses: { ...node.TaggedAddresses },
    NodeMeta: { ...node.Meta },
    ServiceKind: '',
    ServiceID: service.ID,
    ServiceName: service.Service,
    ServiceTags: [...service.Tags],
    ServiceAddress: service.Address,
    ServiceWeights: { Passing: service.Weights.Passing, Warning: service.Weights.Warning },
    ServiceMeta: { ...service.Meta },
    ServicePort: service.Port,
    ServiceSocketPath: '',
    ServiceEnableTagOverride: service.EnableTagOverride,
    ServiceProxy: emptyProxy(),
    ServiceConnect: {},
    ServiceLocality: null,
    CreateIndex: service.CreateIndex,
    ModifyIndex: service.ModifyIndex,
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
