/* http — the HTTP adapter (libmicrohttpd): URLs -> api.h, rest.h and the
 * Solr layouts; statuses -> HTTP codes. Like fs.c it holds no logic of its
 * own. Endpoints (DESIGN.md §2 REST):
 *   POST /solr/config/config.ajax?action=collection_action&emethod=M
 *   GET|POST /solr/N/select[/]      GET /solr/N/admin/ping[/]
 *   GET /solr/admin/cores?action=STATUS[&core=N]      GET /metrics
 * Requests run on a pool of threads, so a query never waits for a build,
 * the channel or another client's slow query beyond the pool's size. */
#ifndef TISFS_HTTP_H
#define TISFS_HTTP_H

#include <stddef.h>

/* Largest request body read; a larger one gets 413 before it is read. */
#define HTTP_MAX_BODY (1 << 20)
/* Connections served at once; more wait in the kernel's backlog. */
#define HTTP_MAX_CONNECTIONS 256

struct http_server;

/* Binds and listens on "[ADDR:]PORT" (ADDR defaults to 127.0.0.1; an IPv6
 * address in brackets). Called before the daemon forks, so that a busy port
 * is an error on the terminal. Returns the socket, or -1 with err. */
int http_listen(const char *addr, char *err, size_t errlen);

/* Reads the bearer token from path (its first line). Returns a malloc'd
 * token, or NULL with err (unreadable or empty file). */
char *http_read_token(const char *path, char *err, size_t errlen);

/* Serves the listening socket fd (taken over) on a thread pool. With a
 * token, every request needs "Authorization: Bearer TOKEN". Returns NULL
 * with err when libmicrohttpd cannot start. */
struct http_server *http_start(int fd, const char *token, char *err, size_t errlen);
/* Stops accepting, finishes the requests in flight, frees. NULL is fine. */
void http_stop(struct http_server *s);

#endif
