/* index — the inverted index of a generation, in its LMDB environment.
 *
 * terms:  (field byte, term bytes) -> posting: the document ids, a term
 *         frequency each (saturating at 255) and the term's positions in
 *         each document (index_posting.c): phrases are answered from them,
 *         as from Lucene's .pos, without the text
 * norms:  u32 (id / 256) << 8 | field -> 256 u16 token counts (saturating at
 *         65535), the BM25 lengths of 256 consecutive ids in one field:
 *         scoring reads a dense column through the map, not a B-tree lookup
 *         per document
 * exists: field byte -> bitmap of the documents with a value in the field
 * Per-field totals (documents, tokens) live in the generation's meta.
 *
 * Live changes (the incremental channel) never patch those: as in Lucene's
 * segments, the bulk-built postings are immutable and each write batch
 * (one transaction) adds a small segment of its own documents' postings:
 * segs:    (u32 BE segment, field byte, term bytes of a block's first
 *          term) -> a block of the segment's consecutive terms and their
 *          postings (of the segment's documents only), about a page each:
 *          a term is found by its block, then a binary search in it (the
 *          form of Lucene's block tree terms dictionary). Segment ids grow
 *          with every batch and keys are segment-major, so a batch is
 *          appended at the end of the tree (MDB_APPEND): it writes new pages
 *          only, never a page of an older posting; a merge deletes its
 *          inputs a block, not a term, at a time
 * seglist: u32 BE segment -> u32 level, u64 entries; key 0 holds the merge
 *          in progress, if any (index_merge.c)
 * dexists: field byte -> dups of u32 BE doc id, likewise for exists
 * deleted: u16 BE (id >> 16) -> portable roaring bitmap of the removed ids
 *          in that range (a removal rewrites at most one small chunk)
 * A changed document gets a new id (ids are never reused) and its old id
 * joins `deleted`, so a segment's ids are all newer than those of the
 * segments before it and of the base: a term's live postings are the
 * segments' in order. A reader sees (base | segments) - deleted, with the
 * collection-wide statistics: answers and scores equal a rebuild's.
 * index_fold is the background merge: tiers of segments are merged into
 * one (a term at a time, resumable), and the segments are folded into the
 * base postings when the stream rests or the segments grow large.
 *
 * Text fields hold the terms of their analyzer; typed fields (numbers,
 * dates) hold one order-preserving binary term per value (index_typed_term),
 * so ranges are key ranges and exact matches are single lookups.
 *
 * Bulk build: rows are tokenized on a worker thread while the dump streams;
 * postings accumulate in memory and are spilled to sorted run files beyond a
 * memory budget; index_builder_finish merges the runs and writes each key
 * once, in key order, with MDB_APPEND. */
#ifndef TISFS_INDEX_H
#define TISFS_INDEX_H

#include <lmdb.h>
#include <roaring/roaring.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "tisfs/analysis.h"
#include "tisfs/schema.h"
#include "tisfs/util.h"

#define INDEX_MEM_BUDGET_DEFAULT ((size_t)80 << 20)

struct index_dbs {
    MDB_dbi terms, norms, exists;
    MDB_dbi segs, seglist, dexists, deleted;
};

/* The layout above and the generation's own (gen.h; 4: a row's version
 * in its pk entry, 5: segments in blocks); a generation written with
 * another one must be rebuilt. */
#define INDEX_FORMAT 5

/* Opens (or, with create, creates) the index databases in txn. */
int index_open_dbs(MDB_txn *txn, bool create, struct index_dbs *d);

/* Tokens indexed from one value at most: a 40 MB cell cut into n-grams
 * would otherwise need gigabytes for one document. The text beyond stays
 * stored (and shown); the build's log says how many values were cut. */
#define INDEX_MAX_TOKENS_PER_VALUE (1u << 20)
/* Bytes of one value analysed at most (a prefix cut at a character). */
#define INDEX_MAX_BYTES_PER_VALUE ((size_t)8 << 20)

/* Whether field f is indexed with typed terms rather than text terms. */
bool field_is_typed(const struct tis_field *f);
/* Whether values of vt have an order of their own (numbers, dates...), so
 * that sorting and ranges compare values even where a token such as
 * `string` indexes them as text. */
bool vtype_is_ordered(enum tis_vtype vt);
/* The order-preserving binary term of a typed value; false if the text is
 * not a value of that type. out receives up to 32 bytes; *n its length. */
bool index_typed_term(enum tis_vtype vt, const char *text, size_t len, unsigned char *out,
                      size_t *n);

struct index_builder;

struct index_builder *index_builder_new(const struct tis_schema *sc,
                                        const struct analysis_opts *opts, const char *tmpdir,
                                        size_t mem_budget, char *err, size_t errlen);
/* Queues one row (copied) for tokenization. Ids must increase. */
int index_builder_add(struct index_builder *b, uint32_t docid, const struct tis_value *vals);
/* Waits for the worker, merges the runs and writes terms, norms and exists
 * bitmaps into env (its own write transactions). *stats receives the
 * per-field totals for the meta. */
int index_builder_finish(struct index_builder *b, MDB_env *env, const struct index_dbs *d,
                         struct json_object **stats, char *err, size_t errlen);
void index_builder_free(struct index_builder *b);
/* A flag index_builder_finish watches: set, the merge stops (ECANCELED). */
void index_builder_set_cancel(struct index_builder *b, const atomic_bool *cancel);
/* Values cut at INDEX_MAX_TOKENS_PER_VALUE (complete once finished). */
uint64_t index_builder_truncated(struct index_builder *b);

/* ---- live changes (inside the caller's write transaction) ----
 * A document update is index_doc_remove of the old id then index_doc_add of
 * the new values under a new, larger id. Add writes the document's delta
 * entries and norms; remove marks the id deleted (its norms stay, unread), so
 * postings stay as written (the merge drops deleted ids from them). The
 * work and the bytes written are those of the document, never of a posting.
 * totals (docs, tokens per field; nfields pairs) are adjusted for the caller
 * to store with the generation's meta. */
struct field_totals {
    int64_t docs, tokens;
};

/* A transaction's term entries and removals, gathered by index_doc_add and
 * index_doc_remove and written by index_delta_flush before the commit as
 * one new segment (its terms in key order, appended) and one update of each
 * touched `deleted` chunk. */
struct index_delta;
struct index_delta *index_delta_new(void);
/* Writes what was gathered (in txn) and empties the batch. */
int index_delta_flush(MDB_txn *txn, const struct index_dbs *d, struct index_delta *b);
/* Forgets what was gathered (TRUNCATE, an aborted transaction). */
void index_delta_reset(struct index_delta *b);
void index_delta_free(struct index_delta *b);

/* A document's analysis, done apart from its writing: the channel analyses
 * a batch on its decoding thread while its writing thread applies the
 * batch before. The decoding thread also groups the batch's term entries
 * by term (index_group): the writing thread then only maps the
 * documents' ordinals to the ids it gives them, and copies. */
struct index_doc; /* the analysis's working space, reusable */
struct index_doc *index_doc_new(const struct tis_schema *sc);
void index_doc_free(struct index_doc *x);

/* A batch analysed ahead of its writing, its entries grouped by term. */
struct index_group;
struct index_group *index_group_new(void);
/* Empties the group for the next batch (keeping its memory). */
void index_group_reset(struct index_group *g);
void index_group_free(struct index_group *g);
/* Analyses vals (the document's every field) as the group's next ordinal
 * (0, 1, ...: the order in which they must be added), and appends its
 * packed form (the field lengths, the ordinal; ~100 bytes) to out. */
void index_group_add(struct index_group *g, struct index_doc *x, struct analyzer *an,
                     const struct analysis_opts *o, const struct tis_value *vals,
                     struct tbuf *out);
/* Bytes the group's entries hold (to bound a batch's). */
size_t index_group_bytes(const struct index_group *g);
/* Sorts the group by term: after the last add, before it is attached;
 * again, it does nothing. Any thread may seal a group another filled (the
 * channel seals a batch on whichever of its two threads would otherwise
 * wait). */
void index_group_seal(struct index_group *g);
/* Attaches a sealed group (NULL: none) to the transaction's batch: its
 * documents are then added with index_doc_add_packed, each one at most
 * once, in ordinal order (ids ascending with ordinals), and
 * index_delta_flush writes their entries with the batch's own. The group
 * must stay as it is until the batch is flushed or freed. */
void index_delta_attach(struct index_delta *b, const struct index_group *g);
/* Adds the document packed by index_group_add as id doc (its norms, exists
 * marks, totals; its entries are the group's). EINVAL: not the attached
 * group's, or already added. */
int index_doc_add_packed(MDB_txn *txn, const struct index_dbs *d, const struct tis_schema *sc,
                         const void *packed, uint32_t doc, const struct tis_value *vals,
                         struct field_totals *totals, struct index_delta *batch);

/* batch NULL: the document's term entries are written at once. */
int index_doc_add(MDB_txn *txn, const struct index_dbs *d, const struct tis_schema *sc,
                  struct analyzer *an, const struct analysis_opts *o, uint32_t doc,
                  const struct tis_value *vals, struct field_totals *totals,
                  struct index_delta *batch);
/* batch NULL: the deleted mark is written at once. */
int index_doc_remove(MDB_txn *txn, const struct index_dbs *d, const struct tis_schema *sc,
                     uint32_t doc, struct field_totals *totals, struct index_delta *batch);
/* Empties the index (TRUNCATE): every id up to last_id is deleted. */
int index_clear(MDB_txn *txn, const struct index_dbs *d, uint32_t last_id);
/* The merge (index_merge.c), a step per call, in the caller's transaction:
 * with INDEX_MERGE_TIERS it merges a run of INDEX_MERGE_FANIN segments of
 * one level into one of the next level, and folds every segment into the
 * base once they hold INDEX_MERGE_BASE_ENTRIES entries; INDEX_MERGE_BEHIND
 * (a channel far behind, whose batches are large) does the same with runs
 * of INDEX_MERGE_FANIN_BEHIND and INDEX_MERGE_BASE_ENTRIES_BEHIND entries:
 * the catch-up's time goes to catching up, and an entry is rewritten once,
 * by the fold at rest, unless the catch-up is long (a query reads up to
 * some hundred segments meanwhile, a seek each: the walk over them is a
 * heap). On two cores, the merges of a 1M-event catch-up with runs of 128
 * and a fold at 32M entries (a 128-segment run at half way, then a fold of
 * the base begun and left for the fold at rest to repeat) took a fifth of
 * the writer's time from half way on: 74k against 80-81k events/s, three
 * runs each. With INDEX_MERGE_ALL (the stream rests) it folds every segment
 * into the base.
 * A merge goes a term at a time until the clock passes `until` (mono_now
 * seconds; one term at least) and records where it stopped in seglist, so
 * that the next call, or the next daemon after a crash, goes on from there.
 * Deleted ids are dropped from what it rewrites. *ran receives whether it
 * wrote anything, *left whether more merging is due now. Readers see the
 * same answers throughout. */
enum index_merge_mode { INDEX_MERGE_TIERS, INDEX_MERGE_BEHIND, INDEX_MERGE_ALL };
#define INDEX_MERGE_FANIN 8
#define INDEX_MERGE_FANIN_BEHIND 512
#define INDEX_MERGE_BASE_ENTRIES 8000000
#define INDEX_MERGE_BASE_ENTRIES_BEHIND 64000000
int index_fold(MDB_txn *txn, const struct index_dbs *d, enum index_merge_mode mode, double until,
               bool *ran, bool *left);
/* Entries (document-term pairs, exists marks) outside the base. */
uint64_t index_delta_entries(MDB_txn *txn, const struct index_dbs *d);
/* Live segments (0 when every change is folded into the base). */
size_t index_segments(MDB_txn *txn, const struct index_dbs *d);

/* ---- reading (all within a read transaction; pointers stay valid in it) ---- */

/* A term's posting as stored: the base part (as built) and the delta part
 * (live additions). Deleted ids are still in it: posting_live drops them.
 * Pointers are into the transaction's memory. */
struct posting {
    roaring_bitmap_t *docs;   /* base ids; owned (posting_free) */
    uint32_t n;               /* base ids */
    bool small;               /* tfs: small: a byte each; large: 4 bits each */
    const unsigned char *tfs; /* by rank in docs: posting_base_tf */
    const unsigned char *exc; /* large: (u32 rank, u8 tf) of the tfs >= 15 */
    uint32_t nexc;
    const unsigned char *pos; /* the positions part (index_posting.c) */
    size_t poslen;
    roaring_bitmap_t *delta;  /* ids in the segments, or NULL; owned */
    uint8_t *dtf;             /* dtf[rank - 1] in delta; owned */
    /* dpos[2 (rank - 1)], dpos[2 (rank - 1) + 1]: the start and end of the
     * positions blob of a delta id (NULL, NULL: none); owned array */
    const unsigned char **dpos;
};

uint32_t posting_tf_exception(const struct posting *p, uint32_t rank);
/* Term frequency of the base document of rank r (0-based). */
static inline uint32_t posting_base_tf(const struct posting *p, uint32_t r)
{
    if (p->small)
        return p->tfs[r];
    uint32_t v = (uint32_t)(p->tfs[r / 2] >> (r % 2 * 4)) & 15;
    return v < 15 ? v : posting_tf_exception(p, r);
}

/* 0 when found, MDB_NOTFOUND, or another LMDB error. */
int index_term(MDB_txn *txn, const struct index_dbs *d, uint8_t field, const void *term,
               size_t len, struct posting *out);
void posting_free(struct posting *p);
/* Term frequency of doc in p (0 if absent). */
uint32_t posting_tf(const struct posting *p, uint32_t doc);
/* The documents that match: (base | delta) - deleted (a new bitmap). */
roaring_bitmap_t *posting_live(const struct posting *p, const roaring_bitmap_t *deleted);
/* Sets of document ids kept as roaring chunks of 65 536 ids each (key: the
 * two high bytes of the ids, big-endian), the form of the deleted marks:
 * one chunk is rewritten per range the added ids fall in. */
int index_idset_add(MDB_txn *txn, MDB_dbi dbi, const roaring_bitmap_t *add);
/* Takes up to max (> 0) of the lowest ids out of the set into *out (NULL
 * when the set is empty). */
int index_idset_take(MDB_txn *txn, MDB_dbi dbi, uint32_t max, roaring_bitmap_t **out);
/* Every deleted id into *out (a new bitmap; empty when none). 0, or
 * MDB_CORRUPTED (*out NULL) when a stored part does not read: skipped, it
 * would bring deleted documents back, and a merge would keep them. */
int index_deleted(MDB_txn *txn, const struct index_dbs *d, roaring_bitmap_t **out);
/* The live documents: every id handed out (1..last_id) minus deleted (a
 * new bitmap; empty, never NULL, for an empty collection). */
roaring_bitmap_t *index_live(uint32_t last_id, const roaring_bitmap_t *deleted);

/* Calls fn for each term of field in [lo, hi] (NULL: open end; incl_*: the
 * bound itself counts), base and delta terms alike, in order; fn returns
 * non-zero to stop. The posting is borrowed for the call. Returns 0, or an
 * LMDB error (MDB_CORRUPTED: a posting or block that cannot be read, where
 * the walk stops). */
typedef int (*term_fn)(void *arg, const unsigned char *term, size_t len,
                       const struct posting *posting);
int index_terms_between(MDB_txn *txn, const struct index_dbs *d, uint8_t field, const void *lo,
                        size_t lolen, bool incl_lo, const void *hi, size_t hilen, bool incl_hi,
                        term_fn fn, void *arg);
/* Decodes a stored base posting (no delta part). */
bool posting_decode(const MDB_val *v, struct posting *out);

/* Documents with a value in field, deleted ones included (a new bitmap;
 * empty when none). */
roaring_bitmap_t *index_exists(MDB_txn *txn, const struct index_dbs *d, uint8_t field);
/* Token count of field in doc (BM25's dl). */
uint32_t index_field_len(MDB_txn *txn, const struct index_dbs *d, uint32_t doc, uint8_t field);

/* The norms of one field read in id order: one LMDB lookup per 256 ids. */
struct norms_reader {
    uint32_t block;             /* the key of lens, or UINT32_MAX */
    const unsigned char *lens;  /* 256 u16 into the transaction's map, or NULL */
};
static inline void norms_reader_init(struct norms_reader *r)
{
    r->block = UINT32_MAX;
    r->lens = NULL;
}
uint32_t norms_read(MDB_txn *txn, const struct index_dbs *d, struct norms_reader *r,
                    uint8_t field, uint32_t doc);

/* A walk over a bitmap's ids that knows each one's rank (index_cursor.c):
 * ids are asked for in increasing order. */
struct id_cursor {
    roaring_uint32_iterator_t it;
    uint32_t buf[256];
    uint32_t n, i; /* ids in buf; the current one */
    uint32_t rank; /* of buf[i], 0-based */
};
void id_cursor_start(struct id_cursor *c, const roaring_bitmap_t *r);
/* Starts over on r at its first id >= from (ranks then count from there). */
void id_cursor_start_at(struct id_cursor *c, const roaring_bitmap_t *r, uint32_t from);
/* Moves to the first id >= doc (buf[i]); false at the end. */
bool id_cursor_seek(struct id_cursor *c, uint32_t doc);

/* The positions of one term, for phrase queries. */
struct term_positions {
    const struct posting *post;  /* the term's posting (base ranks, delta ids) */
    unsigned char key[1 + TERM_MAX_BYTES]; /* field byte, term */
    size_t keylen;
    /* Documents are asked for in increasing order: a cursor over the base
     * ids and their blobs replaces a rank computation per document. */
    struct id_cursor cur;     /* over post->docs */
    const unsigned char *at; /* the blob of rank at_rank */
    uint32_t at_rank;
    bool started;
};
/* Prepares tp for the term of post (which it borrows): 0, or MDB_NOTFOUND
 * for a term longer than any indexed one. */
int term_positions_init(struct term_positions *tp, uint8_t field, const void *term, size_t len,
                        const struct posting *post);
/* The positions of doc (which must be in the posting) into *buf (ascending,
 * grown as needed); returns how many, 0 when they cannot be found. Cheapest
 * when called in increasing doc order. */
size_t term_positions_of(MDB_txn *txn, const struct index_dbs *d, struct term_positions *tp,
                         uint32_t doc, uint32_t **buf, size_t *cap);

#endif
