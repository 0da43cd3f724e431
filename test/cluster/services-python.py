"""
Service discovery through Debian's python3-consul (python-consul 0.7.1), run by
services.test.ts against a client agent of a real cluster: register a service with a TTL check
(lower-case fields, as python-consul sends them), pass it, find it healthy in the catalog and the
health API, then deregister it.

Usage: python3 services-python.py <port>. Prints one line per check; exits 1 on the first failure.
"""
import sys
import time

import consul


def check(name, condition, detail=''):
    if not condition:
        print('FAIL %s %s' % (name, detail))
        sys.exit(1)
    print('ok %s' % name)


def wait_for(what, fetch, timeout=15.0):
    deadline = time.time() + timeout
    value = fetch()
    while not value and time.time() < deadline:
        time.sleep(0.2)
        value = fetch()
    check(what, value, repr(value))
    return value


def main():
    c = consul.Consul(host='127.0.0.1', port=int(sys.argv[1]))
    check('register', c.agent.service.register('py-svc', service_id='py-1', port=7000, tags=['py'],
                                               check=consul.Check.ttl('30s')) is True)
    services = c.agent.services()
    check('agent services', services['py-1']['Service'] == 'py-svc' and services['py-1']['Port'] == 7000, repr(services))
    check('ttl pass', c.agent.check.ttl_pass('service:py-1', 'python says hi') is True)

    def healthy():
        _, nodes = c.health.service('py-svc', passing=True)
        return nodes
    nodes = wait_for('healthy in the catalog', healthy)
    check('health shape', nodes[0]['Service']['ID'] == 'py-1' and nodes[0]['Checks'][-1]['Output'] == 'python says hi', repr(nodes))
    _, catalog = c.catalog.services()
    check('catalog services', catalog.get('py-svc') == ['py'] and 'consul' in catalog, repr(catalog))
    _, instances = c.catalog.service('py-svc')
    check('catalog service', instances[0]['ServicePort'] == 7000, repr(instances))
    check('ttl fail', c.agent.check.ttl_fail('service:py-1', 'down') is True)
    wait_for('unhealthy leaves ?passing', lambda: not healthy())
    check('deregister', c.agent.service.deregister('py-1') is True)
    wait_for('gone from the catalog', lambda: 'py-svc' not in c.catalog.services()[1])
    print('ALL OK')


main()
