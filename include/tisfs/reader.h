/* reader — one query's view of a generation.
 *
 * A reader owns the read transaction, the index handles, the live
 * statistics, the deleted ids and a norms cursor per field, and fetches the
 * documents: the search modules plan and score through it and never touch
 * LMDB. Everything it hands out (postings, document values) stays valid
 * until reader_close. One per query, on one thread. */
#ifndef TISFS_READER_H
#define TISFS_READER_H

#include <json-c/json.h>
#include <roaring/roaring.h>
#include <stdbool.h>
#include <stdint.h>

#include "tisfs/gen.h"
#include "tisfs/index.h"

struct reader;

/* NULL (with err) when the transaction cannot begin. */
struct reader *reader_open(struct gen *g, char *err, size_t errlen);
void reader_close(struct reader *r);

const struct tis_schema *reader_schema(const struct reader *r);
const struct analysis_opts *reader_analysis(const struct reader *r);
/* Live documents and per-field totals as of the reader's transaction. */
const struct gen_stats *reader_stats(const struct reader *r);
/* Ids the postings may still hold but that are gone. */
const roaring_bitmap_t *reader_deleted(const struct reader *r);
/* Every live document. */
const roaring_bitmap_t *reader_all(const struct reader *r);

/* A term's posting (index_term). */
int reader_term(struct reader *r, uint8_t field, const void *term, size_t len,
                struct posting *out);
/* index_terms_between over the reader's transaction. */
int reader_terms_between(struct reader *r, uint8_t field, const void *lo, size_t lolen,
                         bool incl_lo, const void *hi, size_t hilen, bool incl_hi, term_fn fn,
                         void *arg);
/* The live documents with a value in field (a new bitmap). */
roaring_bitmap_t *reader_exists(struct reader *r, uint8_t field);
/* BM25's length of field in doc; cheapest in increasing doc order. */
uint32_t reader_norm(struct reader *r, uint8_t field, uint32_t doc);
/* The positions of doc in a term prepared by term_positions_init
 * (term_positions_of over the reader's transaction). */
size_t reader_positions(struct reader *r, struct term_positions *tp, uint32_t doc,
                        uint32_t **buf, size_t *cap);

/* The stored values of doc in schema order (into the transaction's memory;
 * vals has nfields entries); false when there is no such document. */
bool reader_doc_values(struct reader *r, uint32_t doc, struct tis_value *vals);
/* The stored document as JSON (a new object), or NULL. */
struct json_object *reader_doc_json(struct reader *r, uint32_t doc);

#endif
