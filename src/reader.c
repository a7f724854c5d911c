/* reader — one query's view of a generation: its read transaction and
 * everything read through it (see include/tisfs/reader.h). */
#include "tisfs/reader.h"

#include <stdio.h>
#include <stdlib.h>

#include "tisfs/util.h"

struct reader {
    struct gen *g;
    MDB_txn *txn;
    const struct index_dbs *d;
    struct gen_stats st;
    roaring_bitmap_t *deleted, *all;
    struct norms_reader *norms; /* one per field */
};

struct reader *reader_open(struct gen *g, char *err, size_t errlen)
{
    struct reader *r = xcalloc(1, sizeof *r);
    int rc = gen_txn_begin(g, &r->txn);
    if (rc) {
        snprintf(err, errlen, "cannot read the collection: %s", mdb_strerror(rc));
        free(r);
        return NULL;
    }
    r->g = g;
    r->d = gen_index(g);
    gen_stats_read(g, r->txn, &r->st);
    if ((rc = index_deleted(r->txn, r->d, &r->deleted)) != 0) {
        snprintf(err, errlen, "cannot read the collection's deleted documents: %s",
                 mdb_strerror(rc));
        gen_stats_free(&r->st);
        gen_txn_end(g, r->txn);
        free(r);
        return NULL;
    }
    r->all = index_live(r->st.last_id, r->deleted);
    size_t nf = gen_schema(g)->nfields;
    r->norms = xcalloc(nf ? nf : 1, sizeof *r->norms);
    for (size_t i = 0; i < nf; i++)
        norms_reader_init(&r->norms[i]);
    return r;
}

void reader_close(struct reader *r)
{
    if (!r)
        return;
    roaring_bitmap_free(r->all);
    roaring_bitmap_free(r->deleted);
    gen_stats_free(&r->st);
    free(r->norms);
    gen_txn_end(r->g, r->txn);
    free(r);
}

const struct tis_schema *reader_schema(const struct reader *r)
{
    return gen_schema(r->g);
}

const struct analysis_opts *reader_analysis(const struct reader *r)
{
    return gen_analysis_opts(r->g);
}

const struct gen_stats *reader_stats(const struct reader *r)
{
    return &r->st;
}

const roaring_bitmap_t *reader_deleted(const struct reader *r)
{
    return r->deleted;
}

const roaring_bitmap_t *reader_all(const struct reader *r)
{
    return r->all;
}

int reader_term(struct reader *r, uint8_t field, const void *term, size_t len,
                struct posting *out)
{
    return index_term(r->txn, r->d, field, term, len, out);
}

int reader_terms_between(struct reader *r, uint8_t field, const void *lo, size_t lolen,
                         bool incl_lo, const void *hi, size_t hilen, bool incl_hi, term_fn fn,
                         void *arg)
{
    return index_terms_between(r->txn, r->d, field, lo, lolen, incl_lo, hi, hilen, incl_hi, fn,
                               arg);
}

roaring_bitmap_t *reader_exists(struct reader *r, uint8_t field)
{
    roaring_bitmap_t *e = index_exists(r->txn, r->d, field);
    roaring_bitmap_andnot_inplace(e, r->deleted);
    return e;
}

uint32_t reader_norm(struct reader *r, uint8_t field, uint32_t doc)
{
    return norms_read(r->txn, r->d, &r->norms[field], field, doc);
}

size_t reader_positions(struct reader *r, struct term_positions *tp, uint32_t doc,
                        uint32_t **buf, size_t *cap)
{
    return term_positions_of(r->txn, r->d, tp, doc, buf, cap);
}

bool reader_doc_values(struct reader *r, uint32_t doc, struct tis_value *vals)
{
    return gen_doc_values(r->g, r->txn, doc, vals);
}

struct json_object *reader_doc_json(struct reader *r, uint32_t doc)
{
    return gen_doc_json(r->g, r->txn, doc);
}
