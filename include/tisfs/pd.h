/* pd — finding TiDB through PD.
 *
 * TiDB registers itself in PD's embedded etcd under /topology/tidb/<ip:port>/
 * with an `info` key (JSON: version, git_hash, ...; no lease) and a `ttl` key
 * held by a 45-second lease, present only while that TiDB runs. The SQL
 * address is only in the key. PD's client port serves etcd's JSON gateway:
 * POST /v3/kv/range (older etcd: /v3beta/kv/range) with base64 keys.
 *
 * pd_discover tries each PD address in turn (short, bounded timeouts) and
 * reads the registry from the first that answers. */
#ifndef TISFS_PD_H
#define TISFS_PD_H

#include <stdbool.h>
#include <stddef.h>

#include "tisfs/source.h"

#define PD_TOPOLOGY_PREFIX "/topology/tidb/"
/* Per PD address: connect within this, answer within that (milliseconds). */
#define PD_CONNECT_TIMEOUT_MS 2000
#define PD_REQUEST_TIMEOUT_MS 5000
/* TiDB's SQL port when an address names none. */
#define TIDB_DEFAULT_PORT 4000

struct pd_tidb {
    char *addr; /* "10.0.0.1:4000", as in the key */
    char *host;
    int port;
    bool alive;    /* its ttl key exists */
    char *version; /* from info, NULL when absent */
};

struct pd_topology {
    char *pd;  /* the PD address that answered */
    char *api; /* "/v3" or "/v3beta" */
    struct pd_tidb *tidb; /* sorted by address */
    size_t n;
};

/* Reads the TiDB registry through the PD addresses of pd_addrs (a comma
 * list; "host:port" or "http://host:port"). 0 with *out filled; -1 with err
 * saying what failed: every PD unreachable (each named with its cause), or
 * the answer was not understood. An empty registry is not an error here. */
int pd_discover(const char *pd_addrs, struct pd_topology *out, source_log_fn log, void *log_arg,
                char *err, size_t errlen);
void pd_topology_free(struct pd_topology *t);

/* The live instances of t (pointers into t), in order; NULL with err saying
 * "no TiDB registered" or "none alive" (naming those registered). */
struct pd_tidb **pd_live(const struct pd_topology *t, size_t *n, char *err, size_t errlen);

/* Parses an etcd range response (JSON) into t->tidb (pure; for tests). -1
 * with err when it is not one. */
int pd_parse_range(const char *json, size_t len, struct pd_topology *t, char *err,
                   size_t errlen);
/* The JSON body asking for every key under prefix (malloc'd). */
char *pd_range_request(const char *prefix);

/* Splits "host:port", "[v6]:port" or "host" (port = default_port). -1 on a
 * bad port. */
int pd_split_hostport(const char *addr, int default_port, char **host, int *port);


#endif
