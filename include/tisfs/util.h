/* util — small shared helpers: growable buffers, clocks, varints, files. */
#ifndef TISFS_UTIL_H
#define TISFS_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A growable byte buffer, always NUL-terminated so it can be used as a C
 * string. The zero value is an empty buffer; free with tbuf_free. Allocation
 * failure aborts: the daemon cannot do anything sensible without memory. */
struct tbuf {
    char *data;
    size_t len;
    size_t cap;
};

/* Room for extra more bytes (and the NUL): out of line only when growing. */
void tbuf_grow(struct tbuf *b, size_t extra);
/* Big-endian integers: byte order is number order (LMDB keys). */
static inline void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static inline uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put_be64(unsigned char *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static inline uint64_t get_be64(const unsigned char *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static inline void tbuf_reserve(struct tbuf *b, size_t extra)
{
    if (b->len + extra + 1 > b->cap)
        tbuf_grow(b, extra);
}
/* Inline: tokenizers and encoders add a few bytes at a time, millions of
 * times a build. */
static inline void tbuf_add(struct tbuf *b, const void *p, size_t n)
{
    tbuf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}
void tbuf_adds(struct tbuf *b, const char *s);
void tbuf_printf(struct tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tbuf_vprintf(struct tbuf *b, const char *fmt, va_list ap);
static inline void tbuf_add_varint(struct tbuf *b, uint64_t v)
{
    tbuf_reserve(b, 10);
    unsigned char *w = (unsigned char *)b->data + b->len, *start = w;
    for (; v >= 0x80; v >>= 7)
        *w++ = (unsigned char)(v | 0x80);
    *w++ = (unsigned char)v;
    b->len += (size_t)(w - start);
    b->data[b->len] = 0;
}
static inline void tbuf_reset(struct tbuf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
}
void tbuf_free(struct tbuf *b);

/* Whether two names are equal but for the case of ASCII letters, as
 * strcasecmp in the C locale says: inline, since rows match their column
 * names with it several times an event (strcasecmp was 2 % of a catch-up). */
static inline bool name_eq(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x != y) {
            unsigned char lx = x | 0x20;
            if ((x ^ y) != 0x20 || lx < 'a' || lx > 'z')
                return false;
        } else if (!x)
            return true;
    }
}
/* Hands the contents to the caller (malloc'd, NUL-terminated); b is emptied. */
char *tbuf_take(struct tbuf *b);

/* Reads a varint written by tbuf_add_varint from *p (not past end), advances
 * *p. Returns false on truncated input. */
bool varint_read(const unsigned char **p, const unsigned char *end, uint64_t *v);
/* MurmurHash64A (Austin Appleby's, public domain): a fast 64-bit hash of
 * n bytes, for telling contents apart without keeping them. */
uint64_t hash64(const void *p, size_t n);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
/* Zeroed, at a multiple of align (a power of two, a multiple of
 * sizeof(void *)): tables whose entries should not straddle cache lines. */
void *xaligned_calloc(size_t align, size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Seconds on the monotonic clock (for durations and rates). */
double mono_now(void);
/* Current wall-clock time as ISO-8601 UTC, e.g. "2026-11-24T10:00:00Z"
 * (with_ms adds ".123"). buf needs 32 bytes. */
void iso_now(char *buf, bool with_ms);

/* mkdir -p; returns 0 or -errno. */
int mkdir_p(const char *path, unsigned mode);
/* rm -rf; returns 0 or -errno (missing path is success). */
int rm_rf(const char *path);
/* fsync(2) of a directory: the names in it (a new generation's) survive a
 * power cut. Returns 0 or -errno. */
int fsync_dir(const char *path);
/* Bytes used on disk by everything under path (like du -s). */
uint64_t disk_usage(const char *path);

/* Writes the UTF-8 form of a valid code point (the caller checks it is
 * one: not a surrogate, at most U+10FFFF); returns its length. */
size_t utf8_encode(uint32_t c, char out[4]);

/* Collection names: [A-Za-z0-9_-]{1,64}. */
/* A copy of s (an address, or a comma list of them) with the password of
 * every user:password@ shown as ******: for logs, statuses and replies.
 * Caller frees. */
char *url_mask_credentials(const char *s);

/* Base64 (RFC 4648, padded): a malloc'd string / the decoded bytes (with a
 * NUL after them, *n their count), NULL when s is not base64. */
char *base64_encode(const void *p, size_t n);
char *base64_decode(const char *s, size_t *n);

/* A macro's value as a string literal: TIS_STR(4096) is "4096". */
#define TIS_STR_(x) #x
#define TIS_STR(x) TIS_STR_(x)

#define TIS_NAME_MAX 64
bool name_is_valid(const char *s);

#endif
