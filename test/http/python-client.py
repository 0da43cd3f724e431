"""
Conformance driver for Debian's python3-consul (python-consul 0.7.1), run by
python-conformance.test.ts against a real Conclave HTTP listener (a test double behind it).
It sends lowercase session fields ({"name","lockdelay","behavior","ttl","checks"}), no
Content-Type on KV PUTs, and reads X-Consul-Index on every read, 404 included.

Usage: python3 python-client.py <port> [node-name leader-address peer-count]. The optional
arguments say what agent/self and status must report (defaults: the LocalAgent double's).
Prints one line per check; exits 1 on the first failure.
"""
import sys

import consul


def check(name, condition, detail=''):
    if not condition:
        print('FAIL %s %s' % (name, detail))
        sys.exit(1)
    print('ok %s' % name)


def main():
    c = consul.Consul(host='127.0.0.1', port=int(sys.argv[1]))

    check('kv put', c.kv.put('py/a', 'v1') is True)
    check('kv put flags', c.kv.put('py/b', 'v2', flags=16210313421097356768) is True)
    index, data = c.kv.get('py/a')
    check('kv get', data['Value'] == b'v1' and data['Key'] == 'py/a', repr(data))
    check('kv index', int(index) >= 1, repr(index))
    _, data = c.kv.get('py/b')
    check('kv flags exact', data['Flags'] == 16210313421097356768, repr(data))
    _, entries = c.kv.get('py/', recurse=True)
    check('kv recurse', [e['Key'] for e in entries] == ['py/a', 'py/b'], repr(entries))
    _, keys = c.kv.get('py/', keys=True)
    check('kv keys', keys == ['py/a', 'py/b'], repr(keys))
    missing_index, missing = c.kv.get('py/missing')
    check('kv missing has an index', missing is None and int(missing_index) >= 1, repr(missing_index))
    same_index, same = c.kv.get('py/a', index=index, wait='50ms')
    check('kv blocking times out with the current data', same_index == index and same['Value'] == b'v1')
    check('kv cas create-only', c.kv.put('py/a', 'v3', cas=0) is False)
    check('kv delete', c.kv.delete('py/a') is True)
    _, gone = c.kv.get('py/a')
    check('kv deleted', gone is None)

    sid = c.session.create(name='py', behavior='delete', ttl=10, lock_delay=1)
    _, session = c.session.info(sid)
    check('session lowercase fields', session['Name'] == 'py' and session['Behavior'] == 'delete'
          and session['TTL'] == '10s' and session['LockDelay'] == 1000000000, repr(session))
    no_checks = c.session.create(checks=[])
    _, bare = c.session.info(no_checks)
    check('session without checks', bare['NodeChecks'] == [], repr(bare))
    check('acquire', c.kv.put('py/lock', 'x', acquire=sid) is True)
    check('acquire held elsewhere', c.kv.put('py/lock', 'y', acquire=no_checks) is False)
    _, lock = c.kv.get('py/lock')
    check('lock holder', lock['Session'] == sid and lock['LockIndex'] == 1, repr(lock))
    check('release', c.kv.put('py/lock', 'x', release=sid) is True)
    check('acquire after release', c.kv.put('py/lock', 'y', acquire=no_checks) is True)
    renewed = c.session.renew(sid)
    check('renew', renewed['ID'] == sid, repr(renewed))
    _, sessions = c.session.list()
    check('session list', {sid, no_checks}.issubset({s['ID'] for s in sessions}), repr(sessions))
    check('destroy', c.session.destroy(sid) is True)
    _, destroyed = c.session.info(sid)
    check('destroyed', destroyed is None, repr(destroyed))
    check('kv delete recurse', c.kv.delete('py/', recurse=True) is True)

    node_name = sys.argv[2] if len(sys.argv) > 2 else 'local-node'
    leader = sys.argv[3] if len(sys.argv) > 3 else '127.0.0.1:8300'
    peer_count = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    check('agent self', c.agent.self()['Config']['NodeName'] == node_name)
    check('status leader', c.status.leader() == leader, repr(c.status.leader()))
    peers = c.status.peers()
    check('status peers', len(peers) == peer_count and leader in peers, repr(peers))
    print('ALL OK')


if __name__ == '__main__':
    main()
