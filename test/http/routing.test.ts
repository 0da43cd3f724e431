/**
 * consul-api.md §1, routing and common rules: 404/405/OPTIONS, redirects of non-canonical paths,
 * percent-decoded keys, non-printable paths, request bodies of any type, `?pretty`, `dc`, tokens.
 */
import { request as httpRequest } from 'node:http';
import t from 'tap';
import { listenHttp } from '../../src/http/serve.js';
import { URL_BYTES_MAX, KV_KEY_BYTES_MAX } from '../../src/http/limits.js';
import { json, put, setup } from './helpers.js';

const TEXT = 'text/plain; charset=utf-8';

t.test('an unknown /v1 path is 404 with Consul\'s text', async (t) => {
  const f = await setup(t);
  for (const url of ['/v1/nope', '/v1/catalog/nodesx', '/v1/kvx/a', '/v1/status/leaderx']) {
    const response = await f.request(url);
    t.equal(response.statusCode, 404, url);
    t.equal(response.body, 'Invalid URL path: not a recognized HTTP API endpoint\n', url);
    t.equal(response.headers['content-type'], TEXT);
  }
  const root = await f.request('/');
  t.equal(root.statusCode, 200);
  t.match(root.body, /^Consul Agent: UI disabled/);
  const outside = await f.request('/ui/x');
  t.equal(outside.statusCode, 404);
  t.equal(outside.body, "Invalid URL path: if attempting to use the HTTP API, ensure the path starts with '/v1/'\n");
});

t.test('a wrong method is 405 with the endpoint\'s Allow; OPTIONS is 200; no HEAD', async (t) => {
  const f = await setup(t);
  const cases: [string, string, string][] = [
    ['POST', '/v1/kv/a', 'OPTIONS,GET,PUT,DELETE'],
    ['PATCH', '/v1/kv/a', 'OPTIONS,GET,PUT,DELETE'],
    ['HEAD', '/v1/kv/a', 'OPTIONS,GET,PUT,DELETE'],
    ['PROPFIND', '/v1/kv/a', 'OPTIONS,GET,PUT,DELETE'],
    ['GET', '/v1/txn', 'OPTIONS,PUT'],
    ['POST', '/v1/session/create', 'OPTIONS,PUT'],
    ['GET', '/v1/session/destroy/x', 'OPTIONS,PUT'],
    ['GET', '/v1/session/renew/x', 'OPTIONS,PUT'],
    ['PUT', '/v1/session/info/x', 'OPTIONS,GET'],
    ['DELETE', '/v1/session/node/x', 'OPTIONS,GET'],
    ['PUT', '/v1/session/list', 'OPTIONS,GET'],
    ['PUT', '/v1/status/leader', 'OPTIONS,GET'],
    ['POST', '/v1/status/peers', 'OPTIONS,GET'],
    ['PUT', '/v1/agent/self', 'OPTIONS,GET'],
  ];
  for (const [method, url, allow] of cases) {
    const response = await f.request({ method: method as 'GET', url });
    t.equal(response.statusCode, 405, `${method} ${url}`);
    t.equal(response.headers['allow'], allow, `${method} ${url} Allow`);
    if (method !== 'HEAD') t.equal(response.body, `method ${method} not allowed`);
    const options = await f.request({ method: 'OPTIONS', url });
    t.equal(options.statusCode, 200, `OPTIONS ${url}`);
    t.equal(options.headers['allow'], allow);
    t.equal(options.body, '');
  }
  t.equal(f.agent.index, 1, 'nothing was written');
});

t.test('non-canonical paths are redirected (301) to the cleaned path, query kept', async (t) => {
  const f = await setup(t);
  const cases: [string, string][] = [
    ['/v1/kv//foo', '/v1/kv/foo'],
    ['/v1/kv//foo?recurse&x=1', '/v1/kv/foo?recurse&x=1'],
    ['/v1/kv//a/', '/v1/kv/a/'],
    ['/v1/kv/a%2F%2Fb', '/v1/kv/a/b'],
    ['/v1/kv/a%2F.%2Fb', '/v1/kv/a/b'],
    ['/v1/kv/a%2F..%2Fb', '/v1/kv/b'],
    ['/v1//status/leader', '/v1/status/leader'],
    ['/v1/kv/x%20y//z', '/v1/kv/x%20y/z'],
    ['/v1/kv', '/v1/kv/'],
    ['/v1/kv?keys', '/v1/kv/?keys'],
    ['/v1/session/info', '/v1/session/info/'],
  ];
  for (const [url, location] of cases) {
    const response = await f.request(url);
    t.equal(response.statusCode, 301, url);
    t.equal(response.headers['location'], location, url);
  }
  const put301 = await f.request(put('/a//b', 'x'));
  t.equal(put301.statusCode, 301, 'a PUT too: keys with empty segments are unreachable');
  t.equal(f.agent.index, 1, 'nothing was written');
});

/** A GET with the path sent exactly as given (no client-side normalization, unlike inject()). */
function rawGet(port: number, path: string): Promise<{ status: number; location: string | undefined }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port, path, method: 'GET', agent: false }, (response) => {
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode ?? 0, location: response.headers.location }));
    });
    request.on('error', reject);
    request.end();
  });
}

t.test('dot segments on the wire are redirected too (inject() would normalize them itself)', async (t) => {
  const f = await setup(t);
  const { port } = await listenHttp(f.app, '127.0.0.1', 0);
  const cases: [string, string][] = [
    ['/v1/kv/a/./b?recurse&x=1', '/v1/kv/a/b?recurse&x=1'],
    ['/v1/kv/a/../b', '/v1/kv/b'],
    ['/v1/kv/a/..', '/v1/kv'],
    ['/v1/kv/a/%2E/b', '/v1/kv/a/b'],
    ['/v1/kv/../../etc/passwd', '/etc/passwd'],
  ];
  for (const [path, location] of cases) {
    const response = await rawGet(port, path);
    t.equal(response.status, 301, path);
    t.equal(response.location, location, path);
  }
});

t.test('keys come from the percent-decoded path, %2F included; a trailing slash matters', async (t) => {
  const f = await setup(t);
  t.equal((await f.request(put('a%2Fx%2F1', 'encoded'))).body, 'true');
  const plain = await f.request('/v1/kv/a/x/1');
  t.equal(plain.statusCode, 200);
  t.equal(json<{ Key: string }[]>(plain)[0]?.Key, 'a/x/1');
  t.equal((await f.request(put('docker/swarm/nodes/10.0.0.5:2375', '10.0.0.5:2375'))).body, 'true');
  t.same(json((await f.request('/v1/kv/docker/swarm/nodes/?keys'))), ['docker/swarm/nodes/10.0.0.5:2375']);
  t.equal((await f.request(put('%E2%82%AC uro', 'x'))).statusCode, 200);
  t.equal(json<{ Key: string }[]>(await f.request('/v1/kv/%E2%82%AC%20uro'))[0]?.Key, '€ uro');
  t.equal((await f.request(put('foo', 'no-slash'))).body, 'true');
  t.equal((await f.request(put('foo/', 'slash'))).body, 'true');
  t.same(json(await f.request('/v1/kv/foo?keys')), ['foo', 'foo/']);
  t.equal((await f.request('/v1/kv/foo/?raw')).body, 'slash');
  t.equal((await f.request('/v1/kv/foo?raw')).body, 'no-slash');
});

t.test('non-printable or undecodable paths are 400 with an empty body', async (t) => {
  const f = await setup(t);
  for (const url of ['/v1/kv/a%00b', '/v1/kv/a%0Ab', '/v1/kv/a%7Fb', '/v1/kv/a%C2%A0b', '/v1/kv/a%FFb', '/v1/kv/%E2%82']) {
    const response = await f.request(url);
    t.equal(response.statusCode, 400, url);
    t.equal(response.body, '', url);
    t.equal(response.headers['content-type'], undefined, url);
  }
  for (const [url, escape] of [['/v1/kv/%zz', '%zz'], ['/v1/kv/a%4', '%4'], ['/v1/kv/a%', '%']] as const) {
    const response = await f.request(url);
    t.equal(response.statusCode, 400, url);
    t.equal(response.body, `invalid URL escape "${escape}"`, url);
  }
  const put400 = await f.request(put('a%01', 'x'));
  t.equal(put400.statusCode, 400);
  t.equal(f.agent.index, 1, 'nothing was written');
});

t.test('limits: an over-long URL is 414, an over-long key 400, a bad query 500', async (t) => {
  const f = await setup(t);
  const tooLong = await f.request(`/v1/kv/${'k'.repeat(URL_BYTES_MAX)}`);
  t.equal(tooLong.statusCode, 414);
  const longKey = 'k'.repeat(KV_KEY_BYTES_MAX + 1);
  const keyResponse = await f.request(put(longKey, 'x'));
  t.equal(keyResponse.statusCode, 400);
  t.equal(keyResponse.body, `Key too long (${KV_KEY_BYTES_MAX + 1} > ${KV_KEY_BYTES_MAX} bytes)`);
  t.equal((await f.request(put('k'.repeat(KV_KEY_BYTES_MAX), 'x'))).body, 'true', 'the maximal key is fine');
  for (const url of ['/v1/kv/a?x=%zz', '/v1/kv/a?a;b', '/v1/status/leader?%']) {
    const response = await f.request(url);
    t.equal(response.statusCode, 500, `${url}: Go's ParseQuery error makes Consul answer 500`);
    t.equal(response.body, '');
  }
});

t.test('KV bodies are raw bytes whatever the Content-Type, or none', async (t) => {
  const f = await setup(t);
  const types = [undefined, 'application/octet-stream', 'text/plain', 'application/x-www-form-urlencoded',
    'application/json', 'foo', 'multipart/form-data; boundary=x'];
  for (const [i, type] of types.entries()) {
    const body = `{"not":"parsed"} #${i} a=b&c=d`;
    const headers: Record<string, string> = type === undefined ? {} : { 'content-type': type };
    const response = await f.request({ method: 'PUT', url: `/v1/kv/raw/${i}`, payload: Buffer.from(body), headers });
    t.equal(response.statusCode, 200, String(type));
    t.equal((await f.request(`/v1/kv/raw/${i}?raw`)).body, body, String(type));
  }
  const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80]);
  await f.request({ method: 'PUT', url: '/v1/kv/bin', payload: binary, headers: { 'content-type': 'application/octet-stream' } });
  t.same((await f.request('/v1/kv/bin?raw')).rawPayload, binary);
  t.equal(json<{ Value: string }[]>(await f.request('/v1/kv/bin'))[0]?.Value, binary.toString('base64'));
});

t.test('JSON endpoints parse the body whatever its Content-Type; optional bodies may be empty', async (t) => {
  const f = await setup(t);
  const asText = await f.request({
    method: 'PUT', url: '/v1/session/create', payload: '{"Name":"typed as text"}', headers: { 'content-type': 'text/plain' },
  });
  t.equal(asText.statusCode, 200);
  const empty = await f.request({ method: 'PUT', url: '/v1/session/create', payload: '', headers: { 'content-type': 'application/json' } });
  t.equal(empty.statusCode, 200, 'an empty body with Content-Type: application/json is accepted');
  const { ID } = json<{ ID: string }>(empty);
  const destroy = await f.request({ method: 'PUT', url: `/v1/session/destroy/${ID}`, headers: { 'content-type': 'application/json' } });
  t.equal(destroy.statusCode, 200);
  t.equal(destroy.body, 'true');
});

t.test('?pretty indents with 4 spaces and ends with a newline; compact otherwise', async (t) => {
  const f = await setup(t);
  await f.request(put('p', 'v', '?flags=16210313421097356768'));
  const compact = await f.request('/v1/kv/p');
  t.equal(compact.body, '[{"LockIndex":0,"Key":"p","Flags":16210313421097356768,"Value":"dg==","CreateIndex":2,"ModifyIndex":2}]');
  const pretty = await f.request('/v1/kv/p?pretty');
  t.equal(pretty.body, [
    '[', '    {', '        "LockIndex": 0,', '        "Key": "p",', '        "Flags": 16210313421097356768,',
    '        "Value": "dg==",', '        "CreateIndex": 2,', '        "ModifyIndex": 2', '    }', ']', '',
  ].join('\n'));
  t.equal(pretty.headers['content-type'], 'application/json');
  t.equal((await f.request('/v1/status/leader?pretty=false')).body, '"127.0.0.1:8300"\n', 'presence-based');
  t.equal((await f.request('/v1/kv/?keys&pretty')).body, '[\n    "p"\n]\n');
  t.equal((await f.request('/v1/session/list?pretty')).body, '[]\n');
});

t.test('dc and datacenter: local or empty is fine, anything else is 500 No path to datacenter', async (t) => {
  const f = await setup(t);
  await f.request(put('d', 'v'));
  for (const url of ['/v1/kv/d?dc=dc1', '/v1/kv/d?dc=', '/v1/kv/d?datacenter=dc1&dc=elsewhere']) {
    t.equal((await f.request(url)).statusCode, 200, url);
  }
  for (const request of [
    { method: 'GET', url: '/v1/kv/d?dc=dc2' },
    { method: 'GET', url: '/v1/kv/d?datacenter=dc2&dc=dc1' },
    { method: 'PUT', url: '/v1/kv/d?dc=dc2', payload: 'x' },
    { method: 'DELETE', url: '/v1/kv/d?dc=dc2' },
    { method: 'GET', url: '/v1/status/leader?dc=dc2' },
    { method: 'GET', url: '/v1/session/list?dc=dc2' },
    { method: 'PUT', url: '/v1/txn?dc=dc2', payload: [{ KV: { Verb: 'get', Key: 'd' } }] },
  ] as const) {
    const response = await f.request(request);
    t.equal(response.statusCode, 500, request.url);
    t.equal(response.body, 'No path to datacenter', request.url);
  }
  t.equal((await f.request('/v1/kv/d?raw')).body, 'v', 'the refused PUT wrote nothing');
});

t.test('tokens are accepted and ignored in every form; never 401/403', async (t) => {
  const f = await setup(t);
  const headers = [{ 'x-consul-token': 'secret' }, { authorization: 'Bearer secret' }, {}];
  for (const [i, header] of headers.entries()) {
    const url = i === 2 ? '/v1/kv/t?token=secret' : '/v1/kv/t';
    t.equal((await f.request({ method: 'PUT', url, payload: 'v', headers: header })).statusCode, 200);
    t.equal((await f.request({ method: 'GET', url, headers: header })).statusCode, 200);
  }
});

t.test('meta headers: on KV GET (200, 404, raw), never on writes, status or agent', async (t) => {
  const f = await setup(t);
  const write = await f.request(put('m', 'v'));
  t.equal(write.headers['x-consul-index'], undefined);
  t.equal(write.headers['x-consul-knownleader'], undefined);
  for (const url of ['/v1/kv/m', '/v1/kv/missing', '/v1/kv/m?raw', '/v1/kv/?recurse', '/v1/kv/?keys']) {
    const response = await f.request(url);
    t.equal(response.headers['x-consul-index'], '2', url);
    t.equal(response.headers['x-consul-knownleader'], 'true', url);
    t.equal(response.headers['x-consul-lastcontact'], '0', url);
    t.equal(response.headers['x-consul-effective-consistency'], undefined, `${url}: only catalog and health send it`);
  }
  for (const url of ['/v1/status/leader', '/v1/status/peers', '/v1/agent/self']) {
    const response = await f.request(url);
    t.equal(response.headers['x-consul-index'], undefined, url);
    t.equal(response.headers['x-consul-knownleader'], undefined, url);
  }
  const deletion = await f.request({ method: 'DELETE', url: '/v1/kv/m' });
  t.equal(deletion.headers['x-consul-index'], undefined);
});
