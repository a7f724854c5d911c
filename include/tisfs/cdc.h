/* cdc — decoders of TiCDC's Kafka message formats into row-change events.
 *
 * One module per protocol (cdc_open.c, cdc_canal.c, cdc_debezium.c,
 * cdc_simple.c) behind cdc_decode(); cdc.c holds what they share (the event
 * list, its arena, version helpers, detection). A decoder never consults the
 * collection: it reports every event of the message with its database and
 * table, and the channel keeps those of its own table.
 *
 * Values come out in the form the MySQL text protocol gives a dump, so a
 * document written from an event is byte-for-byte the one a rebuild writes:
 * integers and decimals as decimal text, strings as UTF-8, binary columns as
 * their raw bytes, DATE "YYYY-MM-DD", DATETIME/TIMESTAMP
 * "YYYY-MM-DD HH:MM:SS[.ffffff]", TIME "HH:MM:SS[.ffffff]", BIT as its
 * decimal value (the channel converts it to the dump's bytes), JSON as text,
 * booleans as "1"/"0". */
#ifndef TISFS_CDC_H
#define TISFS_CDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tisfs/schema.h"
#include "tisfs/util.h"

enum cdc_protocol {
    CDC_UNKNOWN = 0,
    CDC_OPEN,     /* "open-protocol" */
    CDC_CANAL,    /* "canal-json" */
    CDC_DEBEZIUM, /* "debezium" */
    CDC_SIMPLE,   /* "simple" */
};

const char *cdc_protocol_name(enum cdc_protocol p);
/* The protocol named s (as in a spec's incr.protocol); CDC_UNKNOWN if none. */
enum cdc_protocol cdc_protocol_from_name(const char *s);

/* Versions: what orders the changes of one row. Values of one domain compare
 * as integers; values of different domains do not compare at all. */
enum ver_domain {
    VER_NONE = 0, /* no version (an event that carries none) */
    VER_TSO,      /* a TiDB timestamp (commitTs, snapshot TSO) */
    VER_BINLOG,   /* a MySQL/MariaDB binlog position: cdc_binlog_version() */
    VER_MS,       /* canal-json's `es`: commit milliseconds, nothing finer */
};

struct version {
    uint8_t domain; /* enum ver_domain */
    uint64_t v;
};

const char *ver_domain_name(enum ver_domain d);
/* A binlog coordinate as one ordered integer: the file's sequence number
 * (the digits after its last '.'), the position, and the row within the
 * event. NONE if file has no sequence number. */
struct version cdc_binlog_version(const char *file, uint64_t pos, uint32_t row);

enum cdc_kind {
    CDC_ROW,      /* an insert, update or delete of one row */
    CDC_DDL,      /* a schema change */
    CDC_RESOLVED, /* watermark: everything before version has been sent */
};

enum cdc_op { CDC_INSERT, CDC_UPDATE, CDC_DELETE };

enum cdc_ddl {
    DDL_OTHER = 0,
    DDL_TRUNCATE, /* TRUNCATE TABLE */
    DDL_DROP,     /* DROP TABLE (or DROP DATABASE) */
    DDL_ADD_COLUMN,
    DDL_DROP_COLUMN,
    /* ALTER TABLE … TRUNCATE, DROP, EXCHANGE, DISCARD or IMPORT PARTITION:
     * rows gone or swapped with no row event for any of them. */
    DDL_PARTITION_ROWS,
};

/* One column of a row image. name and value point into the event list's
 * arena. */
struct cdc_col {
    const char *name;
    struct tis_value v;
    /* Debezium: the value came as a string its schema gives no other type,
     * which is how a binary column comes base64-encoded (TiCDC's encoder,
     * the MySQL connector's binary.handling.mode=base64): the caller, who
     * knows the column's type, decodes it. */
    bool plain_string;
};

struct cdc_row {
    struct cdc_col *cols;
    size_t n;
    /* simple: no BOOTSTRAP has told the decoder this table's column types
     * yet (a channel restarted since the last one): binary values are
     * still base64, ENUM and SET values their index or bits, for the
     * caller to convert by the columns' types it knows. */
    bool untyped;
};

struct cdc_event {
    enum cdc_kind kind;
    enum cdc_op op;         /* CDC_ROW */
    const char *db, *table; /* "" when the message names none (resolved) */
    struct version ver;     /* commit version; resolved: the watermark */
    /* CDC_ROW: after = the new image (insert, update), before = the old one
     * (update when the protocol carries it, delete). An image may hold only
     * some columns (handle-key-only messages, updates of changed columns):
     * the channel merges it with the stored document. */
    struct cdc_row after, before;
    /* CDC_DDL */
    enum cdc_ddl ddl;
    const char *sql;
};

/* The events of one message, with an arena their strings live in. Reusable:
 * cdc_events_reset keeps the memory. */
struct cdc_events {
    struct cdc_event *ev;
    size_t n, cap;
    struct tbuf arena;   /* copies of names and values */
    struct tbuf scratch; /* decoders' working space */
    /* NULL, or an arena the caller lends this list in place of its own:
     * a caller that keeps many lists at once (a batch of messages) lets
     * them share one, so that each short message does not hold a chunk of
     * its own. The lender resets and frees it (cdc_arena_reset, _free);
     * cdc_events_reset leaves it be. */
    struct tbuf *shared;
    /* The parser's documents (struct cdc_docs, cdc_internal.h), allocated
     * at the first JSON message and reused. A caller with many lists may
     * lend each the same ones, as with tables (one decoding thread at a
     * time). */
    struct jdoc *docs;
    /* What decoding learns across messages, kept by reset: the simple
     * protocol's table schemas (from BOOTSTRAP and DDL messages), without
     * which its binary columns and enums cannot be told. NULL at first. */
    struct json_object *tables;
    /* Bytes of the message cdc_decode read last that only repeat an
     * earlier one's (Debezium's schema, when it is the last message's byte
     * for byte): a batch holds only the rest of a message, so a batch
     * bounded in bytes counts only that. */
    size_t repeated;
};

void cdc_events_reset(struct cdc_events *e);
void cdc_events_free(struct cdc_events *e);
/* A lent arena (cdc_events.shared): everything handed out goes, its
 * largest chunk stays for the next use; or all of it. */
void cdc_arena_reset(struct tbuf *a);
void cdc_arena_free(struct tbuf *a);
/* Frees the documents taken from a list's docs (NULL: nothing). */
void cdc_docs_free(struct jdoc *docs);

/* Guesses the protocol of one message (the first one a channel sees when the
 * spec names none): open-protocol by its binary key, the JSON ones by their
 * fields. CDC_UNKNOWN when nothing fits. */
enum cdc_protocol cdc_detect(const void *key, size_t klen, const void *val, size_t vlen);

/* Decodes one Kafka message into events appended to out. Returns 0, or -1
 * with err naming what is wrong and where (a message the channel then skips
 * and reports). Never crashes on any input. */
int cdc_decode(enum cdc_protocol p, const void *key, size_t klen, const void *val, size_t vlen,
               struct cdc_events *out, char *err, size_t errlen);

/* Classifies a DDL statement by its text (for protocols that carry only
 * SQL): TRUNCATE, DROP TABLE/DATABASE, ALTER TABLE ... ADD/DROP COLUMN. */
enum cdc_ddl cdc_ddl_classify(const char *sql);
/* ALTER TABLE pt EXCHANGE PARTITION p WITH TABLE [db.]nt also changes nt,
 * which the event does not name: nt into table and its database into db
 * ("" when the statement names none: the event's). false for any other
 * statement. */
bool cdc_ddl_exchange_table(const char *sql, char *db, size_t dblen, char *table, size_t tlen);

#endif
