"""Row-change events encoded as TiCDC puts them on Kafka, for tests and
benchmarks of the decoders: open-protocol, canal-json, debezium (TiCDC's
flavour and the MySQL connector's) and simple (JSON).

The shapes follow TiCDC's own encoders (pingcap/tiflow pkg/sink/codec/
{open,canal,debezium,simple}) down to key order, Go's JSON escaping and
float formatting, so that a decoder which passes here has seen what the real
thing sends. An event is a dict:

    dict(op='insert', db='shop', table='items', ts=tso(1700000000000),
         row={'id': 1, 'title': 'café', 'body': 'long text'},
         old={...},                 # update: the row before (delete: the row, or in row)
         pk=['id'],                 # default ['id'] when the row has one
         types={'id': 'int', 'title': 'varchar(64)', 'body': 'text'})

op is insert, update, delete, truncate, drop, create, ddl (with sql= and
action=), resolved (ts only) or, for simple, bootstrap. types default from
the Python values (int -> bigint, float -> double, str -> varchar, bytes ->
varbinary); the order of types (else of row) is the table's column order.
Values: int, float, str (also for decimal, dates and times, as TiDB prints
them), bytes for binary columns, str names for enum and set, int for bit,
and dict or str for json. Optional keys: build_ts (ms, else the wall clock),
table_id, schema_version, partition_id (open-protocol ptn), cluster
(debezium), file/pos/binlog_row (MySQL-connector debezium), tz (the zone
TIMESTAMP texts are in, '+08:00' or a name; debezium sends them in UTC).

Functions: open_protocol(events) -> [(key, value)], canal_json(event),
debezium(event, flavour='ticdc'|'mysql'), debezium_key(event) and
simple(event) -> value bytes (those formats put one event in a message, with
a null key but debezium's), tso(ms) for commit timestamps.

TiCDC splits an update that changes the primary key into a delete and an
insert; so must a caller that wants such events as TiCDC sends them.
"""

import base64
import datetime
import decimal
import json
import re
import struct
import time
import zlib

# TiDB's column type codes (open-protocol "t").
TYPE_CODES = {
    'tinyint': 1, 'smallint': 2, 'int': 3, 'integer': 3, 'float': 4, 'double': 5,
    'timestamp': 7, 'bigint': 8, 'mediumint': 9, 'date': 10, 'time': 11,
    'datetime': 12, 'year': 13, 'varchar': 15, 'varbinary': 15, 'bit': 16,
    'json': 245, 'decimal': 246, 'enum': 247, 'set': 248,
    'tinytext': 249, 'tinyblob': 249, 'mediumtext': 250, 'mediumblob': 250,
    'longtext': 251, 'longblob': 251, 'text': 252, 'blob': 252,
    'char': 254, 'binary': 254,
}
STRINGS = {'char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'enum', 'set'}
BLOBS = {249, 250, 251, 252}
INTS = {'tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint'}

# Open-protocol column flags (TiCDC's ColumnFlagType).
F_BINARY, F_HANDLE, F_PK, F_MULTI, F_NULLABLE, F_UNSIGNED = 0x01, 0x02, 0x08, 0x20, 0x40, 0x80

# TiDB DDL action types (open-protocol DDL "t").
ACTIONS = {'create_schema': 1, 'drop_schema': 2, 'create': 3, 'drop': 4, 'add_column': 5,
           'drop_column': 6, 'add_index': 7, 'drop_index': 8, 'truncate': 11,
           'modify_column': 12, 'rename': 14}

# java.sql.Types, for canal-json's sqlType.
JAVA = {'tinyint': -6, 'smallint': 5, 'mediumint': 4, 'int': 4, 'integer': 4, 'bigint': -5,
        'float': 7, 'double': 8, 'decimal': 3, 'timestamp': 93, 'datetime': 93, 'date': 91,
        'time': 92, 'year': 12, 'char': 1, 'varchar': 12, 'binary': 2004, 'varbinary': 2004,
        'bit': -7, 'json': 12, 'enum': 4, 'set': -7}


def tso(ms, logical=0):
    """A TiDB timestamp: physical milliseconds << 18 | logical."""
    return ms << 18 | logical


# --- Go's JSON -------------------------------------------------------------

class F32(float):
    """A FLOAT column's value: Go formats it with float32's shortest digits."""


def _shortest(f, bits):
    if bits == 64:
        return repr(f)
    want = struct.unpack('f', struct.pack('f', f))[0]
    for p in range(1, 10):
        s = '%.*g' % (p, want)
        if struct.unpack('f', struct.pack('f', float(s)))[0] == want:
            return s
    return repr(want)


def go_float(f, bits=64, fixed=False):
    """strconv.FormatFloat(f, 'f', -1, bits) when fixed, else what Go's
    encoding/json writes (fixed between 1e-6 and 1e21, else 1e+21, 1e-7)."""
    if f != f or f in (float('inf'), float('-inf')):
        raise ValueError('JSON has no NaN or infinity')
    s = _shortest(f, bits)
    if fixed or f == 0 or 1e-6 <= abs(f) < 1e21:
        d = decimal.Decimal(s).normalize()
        return format(d, 'f') if d else ('-0' if s.startswith('-') else '0')
    mant, exp = s.split('e')
    return mant + 'e' + exp[0] + exp[1:].lstrip('0')


_ESC = {'"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t'}


def _go_string(s, html):
    out = []
    for c in s:
        if c in _ESC:
            out.append(_ESC[c])
        elif c < ' ' or (html and c in '<>&') or c in '\u2028\u2029':
            out.append('\\u%04x' % ord(c))
        else:
            out.append(c)
    return '"' + ''.join(out) + '"'


def go_json(v, html=True):
    """Compact JSON as Go writes it: dicts in their given order (sort the
    ones Go marshals from maps), <>& escaped unless html=False (jsoniter)."""
    if v is None:
        return 'null'
    if v is True or v is False:
        return 'true' if v else 'false'
    if isinstance(v, str):
        return _go_string(v, html)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return go_float(v, 32 if isinstance(v, F32) else 64)
    if isinstance(v, dict):
        return '{' + ','.join(_go_string(k, html) + ':' + go_json(x, html)
                              for k, x in v.items()) + '}'
    if isinstance(v, (list, tuple)):
        return '[' + ','.join(go_json(x, html) for x in v) + ']'
    raise TypeError(f'no JSON for {v!r}')


def go_quote(b):
    """strconv.Quote without its quotes: printable UTF-8 stays, everything
    else becomes \\xNN, \\n, \\uXXXX, ... (binary CHAR/VARCHAR in open-protocol)."""
    out, i = [], 0
    while i < len(b):
        lead = b[i]
        n = 1 if lead < 0x80 else 2 if 0xc2 <= lead <= 0xdf else 3 if 0xe0 <= lead <= 0xef \
            else 4 if 0xf0 <= lead <= 0xf4 else 0
        try:
            c = b[i:i + n].decode('utf-8') if n else None
        except UnicodeDecodeError:
            c = None
        if c is None or len(c) != 1:
            out.append('\\x%02x' % lead)
            i += 1
            continue
        i += n
        if c in '"\\':
            out.append('\\' + c)
        elif c.isprintable():
            out.append(c)
        elif c in '\a\b\f\n\r\t\v':
            out.append('\\' + 'abfnrtv'['\a\b\f\n\r\t\v'.index(c)])
        elif c < ' ' or c == '\x7f':
            out.append('\\x%02x' % ord(c))
        elif ord(c) < 0x10000:
            out.append('\\u%04x' % ord(c))
        else:
            out.append('\\U%08x' % ord(c))
    return ''.join(out)


# --- columns -----------------------------------------------------------------

class Col:
    """One column of the table: its type parsed from 'decimal(10,2) unsigned'."""

    def __init__(self, name, decl, pk, multi_pk):
        m = re.match(r'\s*(\w+)\s*(?:\((.*)\))?\s*(unsigned)?\s*$', decl, re.I)
        if not m or m.group(1).lower() not in TYPE_CODES:
            raise ValueError(f'column {name}: unknown type {decl!r}')
        self.name, self.base, args = name, m.group(1).lower(), m.group(2) or ''
        self.base = 'int' if self.base == 'integer' else self.base
        self.unsigned = bool(m.group(3))
        self.code = TYPE_CODES[self.base]
        self.elems = [e.replace("''", "'") for e in re.findall(r"'((?:[^']|'')*)'", args)]
        self.nums = [int(x) for x in re.findall(r'\d+', args)] if not self.elems else []
        self.pk, self.multi_pk = pk, multi_pk
        self.binary = self.base not in STRINGS   # TiDB: charset binary
        self.is_text = self.code in BLOBS and self.base.endswith('text')

    @property
    def flags(self):
        f = F_BINARY if self.binary else 0
        f |= (F_PK | F_HANDLE | (F_MULTI if self.multi_pk else 0)) if self.pk else F_NULLABLE
        return f | (F_UNSIGNED if self.unsigned else 0)

    @property
    def fsp(self):
        return self.nums[0] if self.base in ('datetime', 'timestamp', 'time') and self.nums else 0

    def bytes_of(self, v):
        return v if isinstance(v, (bytes, bytearray)) else str(v).encode()

    def index(self, v):
        """enum: 1-based index; set: bit mask (TiCDC's row values)."""
        if isinstance(v, int):
            return v
        if self.base == 'enum':
            return self.elems.index(v) + 1
        names = v.split(',') if isinstance(v, str) else list(v)
        return sum(1 << self.elems.index(n) for n in names if n)

    def text(self, v):
        """The value as TiDB prints it (decimal, dates, times, json)."""
        if isinstance(v, (dict, list)):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, datetime.datetime):
            return v.isoformat(' ', 'microseconds' if self.fsp else 'seconds')
        if isinstance(v, (bytes, bytearray)):
            return v.decode()
        return str(v)

    def mysql_type(self):
        return self.base + (' unsigned' if self.unsigned else '')


def infer_type(v):
    return ('tinyint' if isinstance(v, bool) else 'bigint' if isinstance(v, int) else
            'double' if isinstance(v, float) else
            'varbinary' if isinstance(v, (bytes, bytearray)) else 'varchar')


def columns(ev):
    """The table's columns, in table order."""
    rows = [r for r in (ev.get('row'), ev.get('old')) if r]
    types = dict(ev.get('types') or {})
    for r in rows:
        for k, v in r.items():
            if k not in types:
                types[k] = infer_type(v)
    pk = ev.get('pk') or (['id'] if 'id' in types else [])
    return [Col(n, t, n in pk, len(pk) > 1) for n, t in types.items()]


def _images(ev):
    """(before, after): the row images of a row event."""
    op = ev['op']
    if op == 'insert':
        return None, ev['row']
    if op == 'update':
        return ev['old'], ev['row']
    if op == 'delete':
        return ev.get('old') or ev['row'], None
    raise ValueError(f'not a row event: {op}')


def _build_ts(ev):
    return ev.get('build_ts', int(time.time() * 1000))


def _table_id(ev):
    return ev.get('table_id', 100 + zlib.crc32(f"{ev['db']}.{ev['table']}".encode()) % 10000)


def _ddl_sql(ev):
    if ev.get('sql'):
        return ev['sql']
    verb = {'truncate': 'TRUNCATE TABLE', 'drop': 'DROP TABLE'}.get(ev['op'])
    if not verb:
        raise ValueError(f"{ev['op']} needs sql=")
    return f"{verb} `{ev['db']}`.`{ev['table']}`"


def _ddl_action(ev):
    return ev.get('action', ACTIONS.get(ev['op'], 0))


# --- open-protocol -----------------------------------------------------------

def _open_value(c, v):
    if v is None:
        return None
    if c.code in BLOBS:
        return base64.b64encode(c.bytes_of(v)).decode()
    if c.code in (15, 254):
        return go_quote(c.bytes_of(v)) if c.binary else c.text(v)
    if c.base in ('enum', 'set'):
        return c.index(v)
    if c.base == 'float':
        return F32(v)
    if c.base == 'double':
        return float(v)
    if c.base in INTS or c.base in ('bit', 'year'):
        return int(v)
    return c.text(v)


def _open_columns(cols, row):
    out = {}
    for c in sorted((c for c in cols if c.name in row), key=lambda c: c.name):
        col = {'t': c.code}
        if c.pk:
            col['h'] = True
        col['f'] = c.flags
        col['v'] = _open_value(c, row[c.name])
        out[c.name] = col
    return out


def _open_key(ev, kind):
    key = {'ts': ev['ts']}
    if kind != 3:
        key['scm'], key['tbl'] = ev['db'], ev['table']
    if ev.get('partition_id') is not None:
        key['ptn'] = ev['partition_id']
    key['t'] = kind
    return go_json(key).encode()


def _frame(*parts):
    return b''.join(struct.pack('>Q', len(p)) + p for p in parts)


def open_protocol(events, batch=16):
    """[(key, value)] Kafka messages: consecutive row events batched up to
    `batch` per message like TiCDC; DDL and resolved events travel alone."""
    msgs, keys, values = [], [], []

    def flush():
        if keys:
            msgs.append((struct.pack('>Q', 1) + b''.join(keys), b''.join(values)))
            keys.clear()
            values.clear()

    for ev in events:
        op = ev['op']
        if op == 'resolved':
            flush()
            msgs.append((struct.pack('>Q', 1) + _frame(_open_key(ev, 3)), struct.pack('>Q', 0)))
        elif op in ('insert', 'update', 'delete'):
            cols = columns(ev)
            before, after = _images(ev)
            if op == 'delete':
                value = {'d': _open_columns(cols, before)}
            else:
                value = {'u': _open_columns(cols, after)}
                if before is not None:
                    value['p'] = _open_columns(cols, before)
            if len(keys) >= batch:
                flush()
            keys.append(_frame(_open_key(ev, 1)))
            values.append(_frame(go_json(value).encode()))
        else:
            flush()
            value = go_json({'q': _ddl_sql(ev), 't': _ddl_action(ev)}).encode()
            msgs.append((struct.pack('>Q', 1) + _frame(_open_key(ev, 2)), _frame(value)))
    flush()
    return msgs


# --- canal-json --------------------------------------------------------------

def _canal_value(c, v):
    if v is None:
        return None
    if c.base in ('enum', 'set'):
        return str(c.index(v))
    if c.base in ('float', 'double'):
        return go_float(float(v), 32 if c.base == 'float' else 64, fixed=True)
    if c.binary and c.code in BLOBS | {15, 254}:
        # Canal's convention: binary as ISO-8859-1, one code point per byte.
        return c.bytes_of(v).decode('latin-1')
    return c.text(v)


def _canal_rows(cols, row):
    return None if row is None else [{c.name: _canal_value(c, row[c.name])
                                      for c in cols if c.name in row}]


def canal_json(ev, tidb_extension=True):
    """One canal-json message value; without the TiDB extension there is no
    _tidb.commitTs (only es, in milliseconds) and no watermark."""
    op, es = ev['op'], ev['ts'] >> 18
    msg = {'id': 0, 'database': ev.get('db', ''), 'table': ev.get('table', ''), 'pkNames': None,
           'isDdl': False, 'type': '', 'es': es, 'ts': _build_ts(ev), 'sql': '',
           'sqlType': None, 'mysqlType': None, 'data': None, 'old': None}
    if op == 'resolved':
        if not tidb_extension:
            raise ValueError('canal-json has watermarks only with the TiDB extension')
        msg.update(database='', table='', type='TIDB_WATERMARK', _tidb={'watermarkTs': ev['ts']})
        return go_json(msg).encode()
    if op not in ('insert', 'update', 'delete'):
        ddl = {'create': 'CREATE', 'drop': 'ERASE', 'truncate': 'TRUNCATE'}
        msg.update(isDdl=True, type=ev.get('canal_type', ddl.get(op, 'QUERY')), sql=_ddl_sql(ev))
        if tidb_extension:
            msg['_tidb'] = {'commitTs': ev['ts']}
        return go_json(msg).encode()

    cols = columns(ev)
    before, after = _images(ev)
    pk = [c.name for c in cols if c.pk]
    java = {c.name: (2005 if c.is_text else 2004 if c.code in BLOBS else JAVA[c.base])
            for c in cols}
    # TiCDC writes these fields in this order (old before data), by hand.
    out = dict(msg, pkNames=pk or None, type=op.upper(), sqlType=java,
               mysqlType={c.name: c.mysql_type() for c in cols})
    del out['data'], out['old']
    if op == 'update':
        out['old'], out['data'] = _canal_rows(cols, before), _canal_rows(cols, after)
    else:
        out['old'], out['data'] = None, _canal_rows(cols, after if op == 'insert' else before)
    if tidb_extension:
        out['_tidb'] = {'commitTs': ev['ts']}
    return go_json(out).encode()


# --- debezium ----------------------------------------------------------------

def _zone(tz):
    """'+08:00' or a zone name ('Asia/Shanghai') as a tzinfo; None: UTC."""
    if not tz:
        return datetime.timezone.utc
    m = re.match(r'([+-])(\d\d):(\d\d)$', tz)
    if m:
        off = datetime.timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
        return datetime.timezone(off if m.group(1) == '+' else -off)
    import zoneinfo
    return zoneinfo.ZoneInfo(tz)


def _epoch(s, tz=None):
    d = datetime.datetime.fromisoformat(str(s).replace(' ', 'T'))
    if d.tzinfo is None:
        d = d.replace(tzinfo=_zone(tz))
    return d


def _micros_of_time(s):
    s = str(s)
    neg = s.startswith('-')
    h, m, sec = s.lstrip('-').split(':')
    us = round((int(h) * 3600 + int(m) * 60 + float(sec)) * 1_000_000)
    return -us if neg else us


def _dbz_value(c, v, mysql, tz=None):
    if v is None:
        return None
    b = c.base
    if b == 'bit':
        n = c.nums[0] if c.nums else 1
        return bool(v) if n == 1 else base64.b64encode(int(v).to_bytes((n + 7) // 8, 'little')).decode()
    if c.code in BLOBS or c.code in (15, 254):
        return base64.b64encode(c.bytes_of(v)).decode() if c.binary else c.text(v)
    if b == 'enum':
        return v if isinstance(v, str) else c.elems[v - 1]
    if b == 'set':
        return v if isinstance(v, str) else ','.join(v)
    if b == 'decimal':
        if mysql:   # decimal.handling.mode=precise: big-endian unscaled bytes
            scale = c.nums[1] if len(c.nums) > 1 else 0
            unscaled = int(decimal.Decimal(str(v)).scaleb(scale))
            return base64.b64encode(unscaled.to_bytes(unscaled.bit_length() // 8 + 1, 'big',
                                                      signed=True)).decode()
        return float(v)
    if b == 'date':
        return (_epoch(str(v)[:10]) - _epoch('1970-01-01')).days
    if b == 'datetime':
        d = _epoch(c.text(v)) - _epoch('1970-01-01')
        us = (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds
        return us if c.fsp > 3 else us // 1000
    if b == 'timestamp' and c.text(v).startswith('0000-00-00'):
        # The zero value is no time: TiCDC (and the MySQL connector) send
        # the epoch for it in a NOT NULL column.
        return '1970-01-01T00:00:00' + ('.' + '0' * c.fsp if c.fsp else '') + 'Z'
    if b == 'timestamp':
        d = _epoch(c.text(v), tz).astimezone(datetime.timezone.utc)
        frac = ('.%06d' % d.microsecond)[:1 + c.fsp] if c.fsp else ''
        return d.strftime('%Y-%m-%dT%H:%M:%S') + frac + 'Z'
    if b == 'time':
        return _micros_of_time(c.text(v))
    if b == 'json':
        return c.text(v)
    if b == 'float':
        return F32(v)
    if b == 'double':
        return float(v)
    return int(v)


_DBZ_INT = {'tinyint': 'int16', 'smallint': 'int16', 'mediumint': 'int32', 'int': 'int32',
            'integer': 'int32', 'bigint': 'int64'}
_DBZ_NAMED = {'date': ('int32', 'io.debezium.time.Date'),
              'timestamp': ('string', 'io.debezium.time.ZonedTimestamp'),
              'time': ('int64', 'io.debezium.time.MicroTime'),
              'json': ('string', 'io.debezium.data.Json'),
              'year': ('int32', 'io.debezium.time.Year')}


def _dbz_field(c, mysql):
    b, f = c.base, {}
    n = c.nums[0] if c.nums else 1
    if b == 'bit' and n == 1:
        f['type'] = 'boolean'
    elif b == 'bit':
        f.update(type='bytes', name='io.debezium.data.Bits', version=1,
                 parameters={'length': str(n)})
    elif b in ('enum', 'set'):
        f.update(type='string', name='io.debezium.data.' + ('Enum' if b == 'enum' else 'EnumSet'),
                 version=1, parameters={'allowed': ','.join(c.elems)})
    elif b == 'decimal' and mysql:
        f.update(type='bytes', name='org.apache.kafka.connect.data.Decimal', version=1,
                 parameters={'scale': str(c.nums[1] if len(c.nums) > 1 else 0),
                             'connect.decimal.precision': str(c.nums[0] if c.nums else 10)})
    elif b == 'datetime':
        f.update(type='int64', name='io.debezium.time.' +
                 ('MicroTimestamp' if c.fsp > 3 else 'Timestamp'), version=1)
    elif b in _DBZ_NAMED:
        f.update(type=_DBZ_NAMED[b][0], name=_DBZ_NAMED[b][1], version=1)
    elif b in _DBZ_INT:
        widen = c.unsigned and b in ('smallint', 'int')
        f['type'] = {'int16': 'int32', 'int32': 'int64'}[_DBZ_INT[b]] if widen else _DBZ_INT[b]
    elif b in ('float', 'double', 'decimal'):
        f['type'] = 'float' if b == 'float' else 'double'
    elif mysql and b in ('binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob'):
        f['type'] = 'bytes'     # the MySQL connector's binary.handling.mode=bytes
    else:
        f['type'] = 'string'
    # TiCDC writes type, optional, [name, version, parameters], field.
    return dict({'type': f.pop('type'), 'optional': not c.pk}, **f, field=c.name)


def _dbz_source(ev, mysql):
    ms = ev['ts'] >> 18 if 'ts' in ev else _build_ts(ev)
    src = {'version': '2.4.0.Final', 'connector': 'mysql' if mysql else 'TiCDC',
           'name': ev.get('cluster', 'default'), 'ts_ms': ms, 'snapshot': 'false',
           'db': ev.get('db', ''), 'table': ev.get('table', ''), 'server_id': 0, 'gtid': None,
           'file': '', 'pos': 0, 'row': 0, 'thread': 0, 'query': None}
    if mysql:
        src = dict(src, sequence=None, server_id=1, file=ev.get('file', 'mysql-bin.000001'),
                   pos=ev.get('pos', 4), row=ev.get('binlog_row', 0), thread=7)
        order = ['version', 'connector', 'name', 'ts_ms', 'snapshot', 'db', 'sequence', 'table',
                 'server_id', 'gtid', 'file', 'pos', 'row', 'thread', 'query']
        return {k: src[k] for k in order}
    return dict(src, commit_ts=ev['ts'], cluster_id=ev.get('cluster', 'default'))


def _source_schema(mysql):
    f = [('string', False, 'version'), ('string', False, 'connector'), ('string', False, 'name'),
         ('int64', False, 'ts_ms')]
    out = [{'type': t, 'optional': o, 'field': n} for t, o, n in f]
    out.append({'type': 'string', 'optional': True, 'name': 'io.debezium.data.Enum', 'version': 1,
                'parameters': {'allowed': 'true,last,false,incremental'}, 'default': 'false',
                'field': 'snapshot'})
    f = [('string', False, 'db'), ('string', True, 'sequence'), ('string', True, 'table'),
         ('int64', False, 'server_id'), ('string', True, 'gtid'), ('string', False, 'file'),
         ('int64', False, 'pos'), ('int32', False, 'row'), ('int64', True, 'thread'),
         ('string', True, 'query')]
    out += [{'type': t, 'optional': o, 'field': n} for t, o, n in f]
    if not mysql:
        out += [{'type': 'int64', 'optional': False, 'field': 'commit_ts'},
                {'type': 'string', 'optional': False, 'field': 'cluster_id'}]
    return {'type': 'struct', 'fields': out, 'optional': False,
            'name': 'io.debezium.connector.mysql.Source', 'field': 'source'}


def debezium(ev, flavour='ticdc', schema=True):
    """One debezium message value. flavour='ticdc': TiCDC's debezium protocol
    (payload then schema, source.commit_ts, watermarks as op "m");
    'mysql': the Debezium MySQL connector (schema then payload, ordering only
    by source.file/pos/row, decimal as precise bytes, truncate as op "t").
    schema=False drops the schema (TiCDC: {"payload":..}; MySQL connector
    with schemas.enable=false: the bare payload)."""
    mysql = flavour == 'mysql'
    op = ev['op']
    html = False   # TiCDC's jsoniter writer and Debezium's Jackson leave <>& alone
    name = f"{ev.get('cluster', 'default')}.{ev.get('db', '')}.{ev.get('table', '')}"
    if op == 'resolved':
        if mysql:
            raise ValueError('the MySQL connector has no watermarks')
        payload = {'source': _dbz_source(dict(ev, db='', table=''), False), 'ts_ms': _build_ts(ev),
                   'transaction': None, 'op': 'm'}
        sch = {'type': 'struct', 'optional': False,
               'name': f"{ev.get('cluster', 'default')}.watermark.Envelope", 'version': 1,
               'fields': [_source_schema(False)] + _DBZ_TAIL}
    elif op in ('insert', 'update', 'delete') or (mysql and op == 'truncate'):
        cols = columns(ev)
        before, after = _images(ev) if op != 'truncate' else (None, None)
        img = lambda row: None if row is None else {  # noqa: E731
            c.name: _dbz_value(c, row.get(c.name), mysql, ev.get('tz'))
            for c in cols if c.name in row}
        code = {'insert': 'c', 'update': 'u', 'delete': 'd', 'truncate': 't'}[op]
        fields = [_dbz_field(c, mysql) for c in cols]
        value = {'type': 'struct', 'optional': True, 'name': name + '.Value'}
        sch = {'type': 'struct', 'optional': False, 'name': name + '.Envelope', 'version': 1,
               'fields': [dict(value, field='before', fields=fields),
                          dict(value, field='after', fields=fields),
                          _source_schema(mysql)] + _DBZ_TAIL}
        if mysql:
            payload = {'before': img(before), 'after': img(after), 'source': _dbz_source(ev, True),
                       'op': code, 'ts_ms': _build_ts(ev), 'transaction': None}
        else:
            payload = {'source': _dbz_source(ev, False), 'ts_ms': _build_ts(ev),
                       'transaction': None, 'op': code}
            if op == 'insert':
                payload.update(before=None, after=img(after))
            elif op == 'delete':
                payload.update(after=None, before=img(before))
            else:
                payload.update(before=img(before), after=img(after))
    else:
        payload, sch = _dbz_ddl(ev, mysql)
    if not schema:
        return go_json(payload if mysql else {'payload': payload}, html).encode()
    if mysql:
        return go_json({'schema': sch, 'payload': payload}, html).encode()
    return go_json({'payload': payload, 'schema': sch}, html).encode()


def debezium_key(ev, schema=True):
    """The Kafka key TiCDC's debezium protocol gives a row event: its handle
    (primary key) columns."""
    pk = [c for c in columns(ev) if c.pk]
    before, after = _images(ev)
    row = after if after is not None else before
    payload = {c.name: _dbz_value(c, row.get(c.name), False) for c in pk}
    if not schema:
        return go_json({'payload': payload}, False).encode()
    name = f"{ev.get('cluster', 'default')}.{ev['db']}.{ev['table']}.Key"
    return go_json({'payload': payload, 'schema': {
        'type': 'struct', 'name': name, 'optional': False,
        'fields': [_dbz_field(c, False) for c in pk]}}, False).encode()


_DBZ_TAIL = [
    {'type': 'string', 'optional': False, 'field': 'op'},
    {'type': 'int64', 'optional': True, 'field': 'ts_ms'},
    {'type': 'struct', 'fields': [{'type': 'string', 'optional': False, 'field': 'id'},
                                  {'type': 'int64', 'optional': False, 'field': 'total_order'},
                                  {'type': 'int64', 'optional': False,
                                   'field': 'data_collection_order'}],
     'optional': True, 'name': 'event.block', 'version': 1, 'field': 'transaction'},
]


def _dbz_ddl(ev, mysql):
    """A schema change event (TiCDC sends it on the data topic)."""
    op = ev['op']
    kind = {'create': 'CREATE', 'drop': 'DROP', 'truncate': 'DROP'}.get(op, 'ALTER')
    change = {'type': kind, 'id': f"\"{ev['db']}\".\"{ev['table']}\""}
    if op == 'drop':
        change['table'] = None
    elif op != 'truncate':
        cols = columns(ev) if ev.get('types') or ev.get('row') else []
        change['table'] = {
            'defaultCharsetName': 'utf8mb4',
            'primaryKeyColumnNames': [c.name for c in cols if c.pk],
            'columns': [{'name': c.name, 'jdbcType': JAVA.get(c.base, 12), 'nativeType': None,
                         'comment': None, 'defaultValueExpression': None,
                         'enumValues': ["'%s'" % e for e in c.elems] or None,
                         'typeName': c.base.upper(), 'typeExpression': c.base.upper(),
                         'charsetName': None if c.binary else 'utf8mb4',
                         'length': c.nums[0] if c.nums else None,
                         'scale': float(c.nums[1]) if len(c.nums) > 1 else None,
                         'position': i + 1, 'optional': not c.pk,
                         'autoIncremented': False, 'generated': False}
                        for i, c in enumerate(cols)],
            'comment': None}
    payload = {'source': _dbz_source(ev, mysql), 'ts_ms': _build_ts(ev), 'databaseName': ev['db'],
               'schemaName': None, 'ddl': _ddl_sql(ev),
               'tableChanges': [] if op == 'truncate' else [change]}
    sch = {'optional': False, 'type': 'struct', 'version': 1,
           'name': 'io.debezium.connector.mysql.SchemaChangeValue',
           'fields': [_source_schema(mysql),
                      {'field': 'ts_ms', 'optional': False, 'type': 'int64'},
                      {'field': 'databaseName', 'optional': True, 'type': 'string'},
                      {'field': 'schemaName', 'optional': True, 'type': 'string'},
                      {'field': 'ddl', 'optional': True, 'type': 'string'},
                      {'field': 'tableChanges', 'optional': False, 'type': 'array',
                       'items': {'name': 'io.debezium.connector.schema.Change',
                                 'optional': False, 'type': 'struct', 'version': 1}}]}
    return payload, sch


# --- simple ------------------------------------------------------------------

def _simple_value(c, v, tz):
    if v is None:
        return None
    if c.base == 'timestamp':
        return {'location': tz, 'value': c.text(v)}
    if c.base in ('enum', 'set'):
        return str(c.index(v))
    if c.base in ('float', 'double'):
        return go_float(float(v), 32 if c.base == 'float' else 64, fixed=True)
    if c.binary and c.code in BLOBS | {15, 254}:
        return base64.b64encode(c.bytes_of(v)).decode()
    return c.text(v)


def _simple_table(ev):
    cols = columns(ev)
    out = []
    for c in cols:
        dt = {'mysqlType': c.base, 'charset': 'binary' if c.binary else 'utf8mb4',
              'collate': 'binary' if c.binary else 'utf8mb4_bin'}
        if c.nums:
            dt['length'] = c.nums[0]
        if len(c.nums) > 1:
            dt['decimal'] = c.nums[1]
        if c.elems:
            dt['elements'] = c.elems
        if c.unsigned:
            dt['unsigned'] = True
        out.append({'name': c.name, 'dataType': dt, 'nullable': not c.pk, 'default': None})
    pk = [c.name for c in cols if c.pk]
    indexes = [{'name': 'primary', 'unique': True, 'primary': True, 'nullable': False,
                'columns': pk}] if pk else []
    return {'schema': ev['db'], 'table': ev['table'], 'tableID': _table_id(ev),
            'version': ev.get('schema_version', 1), 'columns': out, 'indexes': indexes}


def simple(ev, tz='UTC'):
    """One message value of TiCDC's simple protocol (JSON flavour)."""
    op = ev['op']
    msg = {'version': 1}
    if op == 'resolved':
        msg.update(type='WATERMARK', commitTs=ev['ts'], buildTs=_build_ts(ev))
    elif op == 'bootstrap':
        msg.update(type='BOOTSTRAP', commitTs=0, buildTs=_build_ts(ev), tableSchema=_simple_table(ev))
    elif op in ('insert', 'update', 'delete'):
        cols = columns(ev)
        before, after = _images(ev)
        img = lambda row: {c.name: _simple_value(c, row[c.name], tz)  # noqa: E731
                           for c in sorted(cols, key=lambda c: c.name) if c.name in row}
        msg.update(database=ev['db'], table=ev['table'], tableID=_table_id(ev), type=op.upper(),
                   commitTs=ev['ts'], buildTs=_build_ts(ev),
                   schemaVersion=ev.get('schema_version', 1))
        if after is not None:
            msg['data'] = img(after)
        if before is not None:
            msg['old'] = img(before)
    else:
        kind = {'create': 'CREATE', 'drop': 'ERASE', 'truncate': 'TRUNCATE'}.get(op, 'QUERY')
        msg.update(type=ev.get('simple_type', kind), sql=_ddl_sql(ev), commitTs=ev['ts'],
                   buildTs=_build_ts(ev))
        if ev.get('table'):
            if op != 'drop':
                msg['tableSchema'] = _simple_table(ev)
            if op != 'create':
                msg['preTableSchema'] = _simple_table(ev)
    return go_json(msg).encode()
