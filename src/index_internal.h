/* index_internal.h — what index.c (format, reading, incremental changes)
 * and index_build.c (the bulk builder) share. Not a public interface. */
#ifndef TISFS_INDEX_INTERNAL_H
#define TISFS_INDEX_INTERNAL_H

#include "tisfs/index.h"
#include "tisfs/util.h"

/* The posting of a full key (field byte + term), base and delta parts:
 * 0, MDB_NOTFOUND or another LMDB error (index.c). */
int index_key_posting(MDB_txn *txn, const struct index_dbs *d, MDB_val key, struct posting *out);

/* memcmp order with the shorter key first on a tie: LMDB's key order. */
int cmp_keys(const void *a, size_t an, const void *b, size_t bn);

/* Encodes a posting as stored in terms: ids ascending, one tf each, and the
 * documents' positions blobs end to end (index_posting.c). */
void posting_encode(const uint32_t *docs, const uint8_t *tf, uint32_t n,
                    const unsigned char *blobs, size_t bloblen, struct tbuf *out);

struct keyref {
    const unsigned char *p; /* field byte + term */
    uint16_t len;
};

/* The index terms of one document: every (field, term) key it yields, then
 * sorted and counted. Reusable from document to document. */
struct doc_terms {
    const struct tis_schema *sc;
    struct tbuf keys; /* u16 length + key, one after another */
    size_t n;         /* keys collected (with repeats) */
    uint32_t *lens;   /* tokens per field: BM25's dl */
    struct keyref *refs;
    uint32_t *tf;
    uint64_t *hash; /* of each distinct key: key_hash() */
    size_t cap;
    uint32_t *slots; /* hash table for doc_terms_distinct */
    size_t nslots;
    uint32_t *tokpos;   /* position of each token collected */
    size_t tokcap;
    uint32_t *tokkey;   /* index of each token's distinct key */
    uint32_t *posoff;   /* positions of distinct key k: posv[posoff[k]..posoff[k+1]) */
    uint32_t *posv;
    size_t poscap;
    uint8_t field;
    size_t field_start;  /* n when the current value began */
    bool cut;            /* the current value was cut */
    uint64_t truncated;  /* values cut so far (tokens or bytes) */
};

void doc_terms_init(struct doc_terms *dt, const struct tis_schema *sc);
void doc_terms_free(struct doc_terms *dt);
void doc_terms_collect(struct doc_terms *dt, struct analyzer *an, const struct analysis_opts *o,
                       const struct tis_value *vals);
/* The hash the index's hash tables use for a key. */
uint64_t key_hash(const unsigned char *p, size_t n);

/* Room in refs, tf, hash and tokkey for every key collected. */
void doc_terms_reserve(struct doc_terms *dt);
/* Merges repeated keys: refs[0..n) distinct, in no particular order, with
 * their tf. Returns n. */
size_t doc_terms_distinct(struct doc_terms *dt);
/* Groups the positions of the nd distinct keys (after doc_terms_distinct). */
void doc_terms_positions(struct doc_terms *dt, size_t nd);
/* Whether distinct key k keeps positions: not in like fields, whose
 * phrases are grams rechecked against the text (and whose 1..3-grams would
 * triple the index). */
static inline bool doc_terms_has_positions(const struct doc_terms *dt, size_t k)
{
    return dt->sc->fields[dt->refs[k].p[0]].token != TOK_LIKE;
}
/* Appends the positions blob of distinct key k: varint byte length, then
 * the positions as varint gaps (the first from 0). */
void doc_terms_pos_blob(const struct doc_terms *dt, size_t k, struct tbuf *out);

/* A key's first 8 bytes as a big-endian number (zero-padded): most key
 * comparisons stop there. */
static inline uint64_t key_prefix8(const unsigned char *key, size_t klen)
{
    unsigned char b[8] = {0};
    memcpy(b, key, klen < 8 ? klen : 8);
    uint64_t prefix = 0;
    for (size_t i = 0; i < 8; i++)
        prefix = prefix << 8 | b[i];
    return prefix;
}

/* cmp_keys of two keys whose key_prefix8 are pa and pb: most differ there. */
static inline int cmp_prefixed_keys(uint64_t pa, const void *a, size_t an, uint64_t pb,
                                    const void *b, size_t bn)
{
    if (pa != pb)
        return pa < pb ? -1 : 1;
    return cmp_keys(a, an, b, bn);
}

/* The analysis's working space of an index_doc (index_live.c). */
struct doc_terms *index_doc_terms(struct index_doc *x);

/* ---- a batch's term entries, grouped by term (index_gather.c) ---- */

/* One document's entry for a term (its index in t): its positions blob
 * is blobs[boff, boff + blen). */
struct gather_entry {
    uint32_t boff, blen, doc, term;
    uint8_t tf;
};

struct gather_term {
    uint32_t koff, count; /* count: gather_count_terms */
    uint16_t klen;
    uint64_t hash, prefix;
};

/* A slot of the gather's table: the term's first 16 key bytes (key_prefix8
 * of the key and of its bytes from 8), so that a token is matched in its
 * slot alone, and the state gather_tokens keeps per document. One cache
 * miss a token: with the term record behind an index, it was two. */
struct gather_slot {
    uint64_t k0, k1;
    uint32_t term1;       /* index in t + 1; 0: empty */
    uint32_t seen, local; /* the stamp of the last document that had it, and
                             its distinct index there */
    uint16_t klen;
};

struct gather {
    struct tbuf keys, blobs;
    struct gather_entry *e;
    size_t n, cap;
    struct gather_term *t;
    size_t nt, tcap;
    struct gather_slot *slots; /* open addressing over t */
    size_t nslots;
    uint32_t stamp; /* gather_tokens' calls so far */
};

void gather_reset(struct gather *g);
void gather_free(struct gather *g);
/* Adds the keys dt collected (doc_terms_collect) as doc's: repeats are
 * merged through the batch's own table (a key is looked up once a token,
 * not once in a table of the document's and again in the batch's). */
void gather_tokens(struct gather *g, struct doc_terms *dt, uint32_t doc);
/* The terms in key order: order[k] is the index in t of the k-th. */
void gather_sort_terms(struct gather *g, uint32_t *order);
/* Sets each term's count (its entries); with bytes (nt of them, zeroed),
 * adds up each term's blob bytes there in the same pass. */
void gather_count_terms(struct gather *g, uint32_t *bytes);
/* The entries grouped by term, terms in key order (*order: the indexes of
 * t in that order), a term's entries in the order they were added. Both
 * are the caller's to free. */
struct gather_entry *gather_by_term(struct gather *g, uint32_t **order);

/* ---- a batch analysed ahead (index_group.c) ---- */

/* A sealed group's term k in key order: its entries are ord, tf
 * [start, t[k + 1].start), its blobs blobs[bstart, t[k + 1].bstart). */
struct group_term {
    uint64_t prefix;
    uint32_t koff, start, bstart;
    uint16_t klen;
};

struct index_group {
    struct gather in; /* documents as added (doc: the ordinal) */
    uint32_t ndocs;
    bool sealed;
    struct group_term *t; /* nt + 1 (the last one ends the others) */
    size_t nt, tcap;
    uint32_t *ord; /* entries in term order */
    uint8_t *tf;
    size_t ecap;
    struct tbuf blobs;
};


/* ---- positions (index_posting.c) ----
 * A large posting keeps the offset of every POS_BLOCK documents' blobs. */
#define POS_BLOCK 32
/* Bytes of the blob at p, 0 when it runs past end. */
size_t pos_blob_len(const unsigned char *p, const unsigned char *end);
/* Decodes a blob into *buf; returns the count (0 when malformed). */
size_t pos_blob_decode(const unsigned char *p, const unsigned char *end, uint32_t **buf,
                       size_t *cap);
/* The blob of the base document of rank r (0-based) in p, or NULL. */
const unsigned char *posting_blob(const struct posting *p, uint32_t r);
/* ---- the build's run files (index_runs.c) ---- */
void index_run_path(const char *tmpdir, int i, char *buf, size_t len);
/* Merges run files 0..nruns-1 of tmpdir into d's terms (each removed once
 * read), committing *txn every 16 MB; ECANCELED once *cancel is set. */
int index_runs_merge(const char *tmpdir, int nruns, const atomic_bool *cancel, MDB_env *env,
                     const struct index_dbs *d, MDB_txn **txn);
/* Commits *txn and begins the next one. */
int index_txn_renew(MDB_env *env, MDB_txn **txn);

/* ---- norms (index_norms.c) ---- */
#define NORMS_BLOCK 256
/* Field lengths are counted up to this (BM25 gives such documents ~0). */
#define NORM_MAX 65535u
/* A write batch's blocks, read once and written once at its end. */
struct norms_cache;
struct norms_cache *norms_cache_new(void);
void norms_cache_reset(struct norms_cache *c);
void norms_cache_free(struct norms_cache *c);
/* Doc's length as the batch sees it (its copy of the block, else the
 * index), without copying the block. A removal reads its document's length
 * with it and leaves the block as it is: nothing reads the length of a
 * deleted id (its postings are hidden, ids are never reused), and clearing
 * it dirtied a random block a removal, nearly every norms page a batch. */
uint32_t norms_cache_peek(struct norms_cache *c, MDB_txn *txn, const struct index_dbs *d,
                          uint8_t field, uint32_t doc);
int norms_cache_put(struct norms_cache *c, MDB_txn *txn, const struct index_dbs *d,
                    uint8_t field, uint32_t doc, uint32_t len);
int norms_cache_flush(struct norms_cache *c, MDB_txn *txn, const struct index_dbs *d);
/* Writes the lengths of ids first.. (consecutive, nf per id) in bulk: whole
 * blocks, appended (the build). */
struct norms_writer;
struct norms_writer *norms_writer_new(size_t nfields, const bool *searched);
int norms_writer_add(struct norms_writer *w, MDB_txn *txn, const struct index_dbs *d,
                     uint32_t doc, const uint32_t *lens);
int norms_writer_finish(struct norms_writer *w, MDB_txn *txn, const struct index_dbs *d);
void norms_writer_free(struct norms_writer *w);

/* Stores r (run-optimised) under k (index_live.c). */
int put_bitmap(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, roaring_bitmap_t *r);

/* A live segment's posting (index_posting.c): written once, read whole;
 * appended to out. */
void segment_posting_encode(const uint32_t *docs, const uint8_t *tf, uint32_t n,
                            const unsigned char *blobs, size_t bloblen, struct tbuf *out);
struct segment_posting {
    uint32_t n;
    const unsigned char *gaps; /* n varint id gaps */
    const unsigned char *tfs;  /* n bytes */
    const unsigned char *pos;  /* n blobs, to end */
    const unsigned char *end;
};
bool segment_posting_decode(const MDB_val *v, struct segment_posting *out);

/* ---- segments (index_segs.c) ---- */
/* A segment's key: u32 BE segment id, then the term key. */
#define SEG_KEY_MAX (4 + 1 + TERM_MAX_BYTES)
size_t seg_key(uint32_t seg, const void *key, size_t klen, unsigned char *out);

/* A segment is stored in blocks of consecutive terms, each under the key
 * (u32 BE segment, its first term key): u16 count, u16 offset of each
 * entry from the block's start, then the entries (u16 key length, term
 * key, u32 value length, value: a segment posting). A block closes before
 * it passes SEG_BLOCK_BYTES (one LMDB overflow page: no run of free pages
 * to find) unless it is empty, so a segment is a few hundred keys rather
 * than one a term: written with few B-tree inserts, and dropped by a merge
 * a block at a time, where one delete a term was half of the merge. */
#define SEG_BLOCK_BYTES 4080
_Static_assert(SEG_BLOCK_BYTES < 65536, "a block's offsets are u16");
struct seg_block {
    const unsigned char *p;
    size_t len;
    uint16_t n;
};
/* Checks a stored block's framing; false when it is malformed. */
bool seg_block_open(const MDB_val *v, struct seg_block *b);
/* Entry i's term key and value (pointers into the block). */
void seg_block_entry(const struct seg_block *b, size_t i, MDB_val *key, MDB_val *val);
/* The first entry whose key is at or after key (b->n: none). */
size_t seg_block_lower(const struct seg_block *b, const void *key, size_t len);
/* Puts cur on the block of segment pre (4 bytes) that holds the first entry
 * at or after key (up to 2 + TERM_MAX_BYTES bytes: a key and a 0 byte), *i
 * that entry: false when the segment has none, or on a malformed block or
 * an LMDB error (then *bad). */
bool seg_seek(MDB_cursor *cur, const unsigned char *pre, const void *key, size_t len,
              struct seg_block *b, size_t *i, bool *bad);
/* Puts cur on the segment's next block (after seg_seek): false at its end. */
bool seg_seek_next(MDB_cursor *cur, const unsigned char *pre, struct seg_block *b, bool *bad);
/* Segment seg's posting of key: 0, MDB_NOTFOUND or MDB_CORRUPTED. */
int seg_find(MDB_cursor *cur, uint32_t seg, const void *key, size_t len, MDB_val *val);

/* Writes a segment's entries, in key order, as blocks. */
struct seg_writer {
    MDB_cursor *cur;
    unsigned flags; /* MDB_APPEND for a new segment */
    uint32_t seg;
    struct tbuf ents;
    uint16_t offs[SEG_BLOCK_BYTES / 8 + 2];
    uint16_t n;
    size_t open; /* where the open entry starts in ents */
};
int seg_writer_begin(struct seg_writer *w, MDB_txn *txn, const struct index_dbs *d, uint32_t seg,
                     unsigned flags);
/* Starts an entry of key: its value is what is appended to the buffer
 * returned, until seg_writer_close_entry. */
struct tbuf *seg_writer_open_entry(struct seg_writer *w, const void *key, size_t klen);
int seg_writer_close_entry(struct seg_writer *w);
int seg_writer_add(struct seg_writer *w, const void *key, size_t klen, const void *val,
                   size_t vlen);
/* Writes the open block, if any: the next entry starts a new one. */
int seg_writer_flush(struct seg_writer *w);
/* Flushes and closes (also after a failure: rc is then returned). */
int seg_writer_end(struct seg_writer *w, int rc);

/* A seglist entry. Id 0 is the merge record, never a segment. */
struct seg_info {
    uint32_t id, level;
    uint64_t entries;
};
/* The live segments, oldest (lowest id) first, into *segs (the caller's
 * to free; NULL when none). Returns how many. */
size_t segs_list(MDB_txn *txn, const struct index_dbs *d, struct seg_info **segs);
int segs_put_info(MDB_txn *txn, const struct index_dbs *d, const struct seg_info *s);

/* The segments' part of a posting, gathered segment after segment (their
 * ids ascend from one to the next): ids, tfs and positions blobs. */
struct delta_parts {
    uint32_t *ids;
    uint8_t *tf;
    const unsigned char **pos; /* 2 per id: blob start, end (NULL: none) */
    size_t n, cap;
};
/* Adds a stored segment posting; false when it cannot be decoded. */
bool delta_parts_add(struct delta_parts *a, const MDB_val *v);
/* Hands what was gathered to out (delta, dtf, dpos) and empties a. */
void delta_parts_into(struct delta_parts *a, struct posting *out);
void delta_parts_free(struct delta_parts *a);

/* ---- the inputs of a k-way merge in a min-heap (index_heap.c) ---- */

/* Input numbers h[0..n), ordered by before(ctx, a, b): by current key,
 * then by number, so that the inputs at one key come out in their order
 * (the build's runs, the walk's sides). h[0] is the smallest; the inputs
 * at its key form a subtree from there. */
struct input_heap {
    size_t *h, n;
    bool (*before)(const void *ctx, size_t a, size_t b);
    const void *ctx;
};
void input_heap_sift(struct input_heap *q, size_t p);
/* Orders h[0..n) as put there. */
void input_heap_build(struct input_heap *q);
/* The top input moved on to a later key (live) or ran out. */
void input_heap_top_moved(struct input_heap *q, bool live);

/* A walk over the keys of the base postings (optional) and of some
 * segments at once, in key order. Keys it gives are term keys (the
 * segment prefix taken off), valid until the walk moves. */
struct walk_side {
    MDB_cursor *cur;
    unsigned char pre[4];
    size_t plen; /* 0: the base */
    struct seg_block b; /* a segment's: the block at the cursor */
    size_t i;           /* and the entry in it */
    MDB_val k, v;
    bool live;
};
struct key_walk {
    struct walk_side *s;
    size_t n;
    bool bad; /* a malformed block was met */
    /* The live sides by key: a scan of every side for each key made a
     * merge of 250 segments cost 250 comparisons a key, three times over
     * (min, parts, next). */
    struct input_heap q;
    size_t *at; /* room for the sides at a key (key_walk_posting, _parts) */
};
int key_walk_open(struct key_walk *w, MDB_txn *txn, const struct index_dbs *d, bool base,
                  const struct seg_info *segs, size_t nsegs);
/* Every side to its first key at or after key. */
void key_walk_seek(struct key_walk *w, const void *key, size_t len);
/* The smallest key of the sides; false when every side is done. */
bool key_walk_min(const struct key_walk *w, MDB_val *key);
/* The posting of key from every side at it (the base's decoded, the
 * segments' gathered into the delta part): 0, or MDB_CORRUPTED (also once
 * the walk has met a malformed block). */
int key_walk_posting(const struct key_walk *w, const MDB_val *key, struct posting *out);
/* The segments' parts of key, in side order, into parts (emptied first,
 * its memory reused), and the bytes they are stored in to *bytes: 0 or
 * MDB_CORRUPTED. A walk without the base. */
int key_walk_parts(const struct key_walk *w, const MDB_val *key, struct delta_parts *parts,
                   size_t *bytes);
/* Moves every side at key to its next key. */
void key_walk_next(struct key_walk *w, const MDB_val *key);
void key_walk_close(struct key_walk *w);

/* ---- a group's terms in a segment (index_group.c) ---- */

/* Room for one term's entries while a segment is written. */
struct seg_out {
    uint32_t *ids;
    uint8_t *tf;
    struct tbuf blobs;
};

/* Writes group term k's entries whose ordinal the batch added (map[o]:
 * its id, 0 none), merged by id with the batch's own entries es[0..nes)
 * of the same key (but those of ids in gone), as one segment posting;
 * *written counts them. o holds room for all of them. */
int group_put_term(struct seg_writer *w, const struct index_group *g, size_t k,
                   const uint32_t *map, const struct gather *own, const struct gather_entry *es,
                   uint32_t nes, const roaring_bitmap_t *gone, struct seg_out *o,
                   uint64_t *written);

#endif
