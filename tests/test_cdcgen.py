"""tests/cdcgen.py against the examples in shared/formats/ticdc.md (taken
from TiCDC's documentation and tests) and the framing rules of each format."""

import base64
import json
import struct

import cdcgen
from cdcgen import canal_json, debezium, debezium_key, open_protocol, simple, tso

EMPLOYEE = {'FirstName': 'varchar', 'HireDate': 'date', 'LastName': 'varchar',
            'OfficeLocation': 'varchar', 'id': 'int'}


def unframe(buf):
    out = []
    while buf:
        n = struct.unpack('>Q', buf[:8])[0]
        out.append(buf[8:8 + n])
        buf = buf[8 + n:]
    return out


def test_cdcgen_canal_json_matches_ticdc_examples():
    row = {'FirstName': 'Bob', 'HireDate': '2014-06-04', 'LastName': 'Smith',
           'OfficeLocation': 'New York', 'id': 101}
    ev = dict(op='insert', db='test', table='employee', ts=tso(1668067205238),
              build_ts=1668067206650, row=row, types=EMPLOYEE)
    want = ('{"id":0,"database":"test","table":"employee","pkNames":["id"],"isDdl":false,'
            '"type":"INSERT","es":1668067205238,"ts":1668067206650,"sql":"","sqlType":'
            '{"FirstName":12,"HireDate":91,"LastName":12,"OfficeLocation":12,"id":4},'
            '"mysqlType":{"FirstName":"varchar","HireDate":"date","LastName":"varchar",'
            '"OfficeLocation":"varchar","id":"int"},"data":[{"FirstName":"Bob","HireDate":'
            '"2014-06-04","LastName":"Smith","OfficeLocation":"New York","id":"101"}],"old":null}')
    assert json.loads(canal_json(ev, tidb_extension=False)) == json.loads(want)
    assert json.loads(canal_json(ev))['_tidb'] == {'commitTs': tso(1668067205238)}

    wm = canal_json(dict(op='resolved', ts=429918007904436226, build_ts=1640007050284))
    assert wm == (b'{"id":0,"database":"","table":"","pkNames":null,"isDdl":false,'
                  b'"type":"TIDB_WATERMARK","es":1640007049196,"ts":1640007050284,"sql":"",'
                  b'"sqlType":null,"mysqlType":null,"data":null,"old":null,'
                  b'"_tidb":{"watermarkTs":429918007904436226}}')
    ddl = json.loads(canal_json(dict(op='ddl', db='test', table='', ts=429918007904436226,
                                     sql='drop database if exists test', action=2)))
    assert (ddl['isDdl'], ddl['type'], ddl['sql'], ddl['_tidb']) == (
        True, 'QUERY', 'drop database if exists test', {'commitTs': 429918007904436226})


def test_cdcgen_canal_json_update_and_binary():
    ev = dict(op='update', db='d', table='t', ts=tso(1), types={'id': 'int', 'b': 'varbinary(8)'},
              old={'id': 1, 'b': b'\x00\xe9'}, row={'id': 1, 'b': b'\xff<'})
    msg = json.loads(canal_json(ev))
    assert msg['type'] == 'UPDATE'
    assert msg['old'] == [{'id': '1', 'b': '\x00\xe9'}]    # ISO-8859-1: one code point a byte
    assert msg['data'] == [{'id': '1', 'b': '\xff<'}]
    assert b'\\u003c' in canal_json(ev)                      # Go escapes <>& in JSON


def test_cdcgen_simple_matches_ticdc_example():
    ev = dict(op='insert', db='simple', table='user', ts=447984084414103554,
              build_ts=1708923662983, table_id=148, schema_version=447984074911121426,
              row={'id': 1, 'name': 'John Doe', 'age': 25, 'score': 90.5},
              types={'id': 'int', 'name': 'varchar', 'age': 'int', 'score': 'float'})
    assert simple(ev) == (b'{"version":1,"database":"simple","table":"user","tableID":148,'
                          b'"type":"INSERT","commitTs":447984084414103554,"buildTs":1708923662983,'
                          b'"schemaVersion":447984074911121426,"data":{"age":"25","id":"1",'
                          b'"name":"John Doe","score":"90.5"}}')
    assert json.loads(simple(dict(op='resolved', ts=5, build_ts=1))) == {
        'version': 1, 'type': 'WATERMARK', 'commitTs': 5, 'buildTs': 1}


def test_cdcgen_open_protocol_framing():
    ts = 415508878783938562
    rows = [dict(op='insert', db='test', table='t1', ts=ts, row={'id': i, 'val': 'aa'},
                 types={'id': 'int', 'val': 'varchar'}) for i in range(20)]
    msgs = open_protocol(rows + [dict(op='resolved', ts=415508881038376963),
                                 dict(op='truncate', db='test', table='t1', ts=ts + 1)])
    assert len(msgs) == 4    # 16 + 4 rows, then the resolved and the DDL event alone
    key, value = msgs[0]
    assert key[:8] == struct.pack('>Q', 1)
    keys, values = unframe(key[8:]), unframe(value)
    assert len(keys) == len(values) == 16
    assert keys[0] == b'{"ts":415508878783938562,"scm":"test","tbl":"t1","t":1}'
    assert json.loads(values[3]) == {'u': {'id': {'t': 3, 'h': True, 'f': 11, 'v': 3},
                                           'val': {'t': 15, 'f': 64, 'v': 'aa'}}}
    assert len(unframe(msgs[1][0][8:])) == 4
    assert msgs[2] == (struct.pack('>Q', 1) + struct.pack('>Q', 31) +
                       b'{"ts":415508881038376963,"t":3}', bytes(8))
    assert json.loads(unframe(msgs[3][1])[0]) == {'q': 'TRUNCATE TABLE `test`.`t1`', 't': 11}


def test_cdcgen_open_protocol_values():
    ev = dict(op='update', db='d', table='t', ts=1,
              types={'id': 'bigint unsigned', 'bin': 'varbinary(8)', 'body': 'text',
                     'f': 'float', 'e': "enum('x','y')"},
              old={'id': 2**64 - 1, 'bin': b'a\x00"\xff\n\xe4\xb8\xad', 'body': 'héllo',
                   'f': 0.1, 'e': 'y'},
              row={'id': 2**64 - 1, 'bin': None, 'body': 'x', 'f': 1e-7, 'e': 'x'})
    (key, value), = open_protocol([ev])
    v = json.loads(unframe(value)[0])
    assert v['p']['id'] == {'t': 8, 'h': True, 'f': 0x80 | 0x08 | 0x02 | 0x01, 'v': 2**64 - 1}
    assert v['p']['bin']['v'] == 'a\\x00\\"\\xff\\n中'              # Go-quoted, no quotes
    assert base64.b64decode(v['p']['body']['v']).decode() == 'héllo'
    assert v['p']['e']['v'] == 2 and v['u']['bin']['v'] is None
    assert b'"v":0.1}' in value and b'"v":1e-7}' in value


def test_cdcgen_debezium_shapes():
    ev = dict(op='delete', db='d', table='t', ts=tso(1700000000000), build_ts=7,
              row={'id': 5, 'title': 'x'}, types={'id': 'int', 'title': 'varchar(10)'})
    msg = json.loads(debezium(ev))
    assert list(msg) == ['payload', 'schema']
    p = msg['payload']
    assert (p['op'], p['before'], p['after']) == ('d', {'id': 5, 'title': 'x'}, None)
    assert p['source']['commit_ts'] == tso(1700000000000)
    assert p['source']['ts_ms'] == 1700000000000 and p['source']['db'] == 'd'
    assert [f['field'] for f in msg['schema']['fields']][:3] == ['before', 'after', 'source']
    assert json.loads(debezium_key(ev))['payload'] == {'id': 5}
    assert json.loads(debezium(dict(op='resolved', ts=9), schema=False))['payload']['op'] == 'm'

    mysql = json.loads(debezium(dict(ev, op='insert', pos=120, binlog_row=1,
                                     types={'id': 'int', 'title': 'varchar(10)',
                                            'price': 'decimal(5,2)'},
                                     row={'id': 5, 'title': 'x', 'price': '1.50'}),
                                flavour='mysql'))
    assert list(mysql) == ['schema', 'payload']
    src = mysql['payload']['source']
    assert 'commit_ts' not in src and (src['file'], src['pos'], src['row']) == (
        'mysql-bin.000001', 120, 1)
    assert base64.b64decode(mysql['payload']['after']['price']) == b'\x00\x96'   # BigInteger.toByteArray()


def test_cdcgen_go_formatting():
    assert [cdcgen.go_float(x) for x in (1.0, 0.1, 1e21, 1e-7, 123456789.0, -0.0)] == [
        '1', '0.1', '1e+21', '1e-7', '123456789', '-0']
    assert cdcgen.go_float(1e-7, fixed=True) == '0.0000001'
    assert cdcgen.go_float(0.1, bits=32) == '0.1'
    assert cdcgen.go_json({'a': '<&>\u2028\x01'}) == '{"a":"\\u003c\\u0026\\u003e\\u2028\\u0001"}'
    assert cdcgen.go_quote('tab\there é\x7f'.encode() + b'\xc3') == 'tab\\there é\\x7f\\xc3'
