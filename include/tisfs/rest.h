/* rest — the user's own REST methods (shared/seed/rest-api.md):
 * POST /solr/config/config.ajax?action=collection_action&emethod=M with a
 * relaxed-JSON body, answered with the seed's envelope
 *   {"success": bool, "errormsg": [...], "bizresult": {...}}
 * Each method is known under the seed's name and the original system's
 * (DESIGN.md): do_create|create, do_get_status|get_task_status,
 * do_get_incr_status|get_incr_status, do_create_incr|create_incr,
 * do_fullbuild|fullbuild, do_delete_index|delete_index|deleteIndex, and
 * beyond the seed do_verify|verify ({indexName, repair}).
 * Transport-free: the HTTP adapter hands over the method and the body. */
#ifndef TISFS_REST_H
#define TISFS_REST_H

#include <stdbool.h>
#include <stddef.h>

#include "tisfs/util.h"

/* Runs method emethod with body[0..len) and writes the envelope to out.
 * Every outcome is an envelope (a business error is success:false with a
 * message that names the problem); the return value says whether emethod
 * was known at all. */
bool rest_call(const char *emethod, const char *body, size_t len, struct tbuf *out);

#endif
