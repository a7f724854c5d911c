/* index_cursor — a walk over a bitmap's ids that knows each one's rank.
 *
 * Postings keep per-document data (tf, positions) in id order, so the rank
 * of an id is its index there; CRoaring's rank is a popcount over up to a
 * whole container per call. Scoring and phrases ask for ids in increasing
 * order: a cursor read a chunk at a time (one call per 256 ids) gives the
 * ranks for the price of the walk. */
#include "tisfs/index.h"

void id_cursor_start(struct id_cursor *c, const roaring_bitmap_t *r)
{
    roaring_init_iterator(r, &c->it);
    c->n = roaring_read_uint32_iterator(&c->it, c->buf, 256);
    c->i = c->rank = 0;
}

/* Ranks then count from the first id >= from. */
void id_cursor_start_at(struct id_cursor *c, const roaring_bitmap_t *r, uint32_t from)
{
    roaring_init_iterator(r, &c->it);
    roaring_move_uint32_iterator_equalorlarger(&c->it, from);
    c->n = c->it.has_value ? roaring_read_uint32_iterator(&c->it, c->buf, 256) : 0;
    c->i = c->rank = 0;
}

bool id_cursor_seek(struct id_cursor *c, uint32_t doc)
{
    for (;;) {
        if (c->n && c->buf[c->n - 1] < doc) { /* past this chunk: skip it whole */
            c->rank += c->n - c->i;
            c->i = c->n;
        } else /* in it: mostly the next few ids */
            while (c->i < c->n && c->buf[c->i] < doc)
                c->i++, c->rank++;
        if (c->i < c->n)
            return true;
        if (!c->n)
            return false;
        c->n = roaring_read_uint32_iterator(&c->it, c->buf, 256);
        c->i = 0;
    }
}

