/* journal.c: append-only journal of unfinished announcements: CRC32-framed records, batched
 * fdatasync, torn-tail recovery and streaming compaction. */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "byteorder.h"
#include "fdio.h"
#include "log.h"

#define MAGIC "WMJOURNL"
#define VERSION 1u
#define HEADER_SIZE 24u /* magic[8] version[4] first_id[8] crc[4] */
#define REC_HEAD 16u    /* type[4] len[4] id[8] */
#define REC_TAIL 4u     /* crc[4] */
#define REC_ADD 1u
#define REC_DONE 2u
#define REC_MAX (REC_HEAD + JOURNAL_RECORD_MAX + REC_TAIL)
/* Unsynced bytes allowed to pile up while syncs fail; past that, adds are refused. */
#define PEND_MAX (64u << 20)
/* A pending buffer larger than this is freed after a sync, so one burst does not pin memory. */
#define PEND_KEEP (1u << 20)
/* Read buffer: must hold the largest record; larger means fewer preads while scanning. */
#define READ_BUF (512u << 10)
_Static_assert(READ_BUF >= REC_MAX, "the read buffer holds the largest record");
#define COMPACT_FLUSH (256u << 10)
#define IDSET_MIN_BITS 4u
#define TMP_SUFFIX ".compact"

/* ---- CRC32 (IEEE 802.3, reflected, as in zlib and PNG) ---- */

/* Slicing by 8: eight bytes a step through eight tables, about five times the speed of a byte
 * at a time, which mattered once outbox entries doubled the bytes each file journals. Table
 * k gives the CRC of a byte followed by k zero bytes. The result is the same CRC. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int k = 1; k < 8; k++)
            crc_table[k][n] =
                crc_table[0][crc_table[k - 1][n] & 0xffu] ^ (crc_table[k - 1][n] >> 8);
}

static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t len)
{
    crc = ~crc;
    for (; len >= 8; len -= 8, p += 8) {
        uint32_t lo = crc ^ le32_read(p);
        crc = crc_table[7][lo & 0xffu] ^ crc_table[6][(lo >> 8) & 0xffu] ^
              crc_table[5][(lo >> 16) & 0xffu] ^ crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^
              crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
    }
    while (len--)
        crc = crc_table[0][(crc ^ *p++) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

/* ---- the live set: open addressing over ids, linear probing, 0 marks an empty slot ---- */

struct idset {
    uint64_t *slot;
    unsigned bits; /* 1 << bits slots */
    size_t count;
};

static size_t id_home(uint64_t id, unsigned bits)
{
    /* Fibonacci hashing: ids are consecutive, the multiply spreads them over the top bits. */
    return (size_t)((id * 0x9e3779b97f4a7c15ull) >> (64 - bits));
}

static size_t id_find(const struct idset *s, uint64_t id)
{
    size_t mask = ((size_t)1 << s->bits) - 1;
    size_t i = id_home(id, s->bits);
    while (s->slot[i] != 0 && s->slot[i] != id)
        i = (i + 1) & mask;
    return i;
}

static bool idset_has(const struct idset *s, uint64_t id)
{
    return s->slot[id_find(s, id)] == id;
}

static enum wm_err idset_resize(struct idset *s, unsigned bits)
{
    uint64_t *fresh = calloc((size_t)1 << bits, sizeof *fresh);
    if (!fresh) return WM_ERR_NOMEM;
    struct idset n = {.slot = fresh, .bits = bits, .count = s->count};
    for (size_t i = 0; s->slot && i < ((size_t)1 << s->bits); i++)
        if (s->slot[i]) n.slot[id_find(&n, s->slot[i])] = s->slot[i];
    free(s->slot);
    *s = n;
    return WM_OK;
}

/* Grows at three quarters full: 11 to 21 bytes per live id. */
static enum wm_err idset_put(struct idset *s, uint64_t id)
{
    if ((s->count + 1) * 4 > ((size_t)3 << s->bits)) {
        enum wm_err err = idset_resize(s, s->bits + 1);
        if (err != WM_OK) return err;
    }
    size_t i = id_find(s, id);
    if (s->slot[i] == id) return WM_OK;
    s->slot[i] = id;
    s->count++;
    return WM_OK;
}

/* Backward-shift deletion: no tombstones, so lookups never slow down with churn. */
static void idset_del(struct idset *s, uint64_t id)
{
    size_t mask = ((size_t)1 << s->bits) - 1;
    size_t i = id_find(s, id);
    if (s->slot[i] != id) return;
    for (size_t j = (i + 1) & mask; s->slot[j] != 0; j = (j + 1) & mask) {
        size_t h = id_home(s->slot[j], s->bits);
        if (((j - h) & mask) >= ((j - i) & mask)) {
            s->slot[i] = s->slot[j];
            i = j;
        }
    }
    s->slot[i] = 0;
    s->count--;
    /* Shrink after a burst; a failed shrink only costs memory. */
    if (s->bits > IDSET_MIN_BITS && s->count * 8 < ((size_t)1 << s->bits))
        (void)idset_resize(s, s->bits - 1);
}

/* One piece of a record's payload. */
struct part {
    const void *data;
    size_t len;
};

/* Appends one framed record whose payload is the concatenation of the n parts. */
static enum wm_err buf_record(struct buf *b, uint32_t type, uint64_t id, const struct part *parts,
                              size_t n, size_t max)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += parts[i].len;
    size_t size = REC_HEAD + len + REC_TAIL;
    if (size > max || b->len > max - size) return WM_ERR_TOOBIG;
    enum wm_err err = buf_reserve(b, size);
    if (err != WM_OK) return err;
    unsigned char *p = b->data + b->len;
    le32_write(p, type);
    le32_write(p + 4, (uint32_t)len);
    le64_write(p + 8, id);
    size_t at = REC_HEAD;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len) memcpy(p + at, parts[i].data, parts[i].len);
        at += parts[i].len;
    }
    le32_write(p + REC_HEAD + len, crc32_update(0, p, REC_HEAD + len));
    b->len += REC_HEAD + len + REC_TAIL;
    return WM_OK;
}

/* ---- reading records back ---- */

enum rd { RD_OK, RD_END, RD_BAD, RD_IO };

struct reader {
    int fd;
    unsigned char *buf; /* READ_BUF bytes */
    size_t pos, len;    /* unread bytes are buf[pos, len) */
    uint64_t next;      /* file offset of buf[len] */
    uint64_t end;       /* stop reading here */
};

struct record {
    uint32_t type;
    uint64_t id;
    const unsigned char *payload; /* inside the reader's buffer, valid until the next read */
    size_t len;                   /* payload bytes */
    const unsigned char *raw;     /* the whole framed record */
    size_t size;
};

static enum wm_err reader_init(struct reader *r, int fd, uint64_t start, uint64_t end)
{
    *r = (struct reader){.fd = fd, .next = start, .end = end};
    r->buf = malloc(READ_BUF);
    return r->buf ? WM_OK : WM_ERR_NOMEM;
}

/* Makes at least need unread bytes available; false at the end of the range or on error. */
static bool reader_fill(struct reader *r, size_t need, bool *io_error)
{
    if (r->len - r->pos >= need) return true;
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->len -= r->pos;
    r->pos = 0;
    while (r->len < need && r->next < r->end) {
        size_t want = READ_BUF - r->len;
        if (want > r->end - r->next) want = (size_t)(r->end - r->next);
        ssize_t n = pread(r->fd, r->buf + r->len, want, (off_t)r->next);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            *io_error = n < 0;
            return false;
        }
        r->len += (size_t)n;
        r->next += (uint64_t)n;
    }
    return r->len >= need;
}

/* Offset in the file of the next unread byte. */
static uint64_t reader_offset(const struct reader *r)
{
    return r->next - (r->len - r->pos);
}

static enum rd reader_next(struct reader *r, struct record *rec)
{
    bool io_error = false;
    if (!reader_fill(r, REC_HEAD, &io_error)) {
        if (io_error) return RD_IO;
        return r->len == r->pos ? RD_END : RD_BAD;
    }
    const unsigned char *p = r->buf + r->pos;
    rec->type = le32_read(p);
    rec->len = le32_read(p + 4);
    rec->id = le64_read(p + 8);
    if (rec->type != REC_ADD && rec->type != REC_DONE) return RD_BAD;
    if (rec->len > JOURNAL_RECORD_MAX || (rec->type == REC_DONE && rec->len != 0)) return RD_BAD;
    if (rec->id == 0) return RD_BAD;
    rec->size = REC_HEAD + rec->len + REC_TAIL;
    if (!reader_fill(r, rec->size, &io_error)) return io_error ? RD_IO : RD_BAD;
    p = r->buf + r->pos; /* the fill may have moved the bytes */
    if (crc32_update(0, p, REC_HEAD + rec->len) != le32_read(p + REC_HEAD + rec->len))
        return RD_BAD;
    rec->raw = p;
    rec->payload = p + REC_HEAD;
    r->pos += rec->size;
    return RD_OK;
}

/* ---- the journal ---- */

/* What one sync writes: the records buffered when it began, and where they go. */
struct journal_batch {
    int fd;             /* the journal file (not owned) */
    int dirfd;          /* its directory (not owned) */
    bool fdatasync;     /* flush the file (false: only write it) */
    bool dir;           /* fsync the directory too (a compaction's rename) */
    uint64_t offset;    /* where data goes in the file */
    uint64_t next_id;   /* every id below this is in data or already durable */
    struct buf data;    /* framed records */
    int error;          /* errno of the failure, for journal_sync_end */
    const char *failed; /* what failed: "cannot write", ...; NULL when nothing did */
};

struct journal {
    int fd;
    int dirfd;              /* the journal's directory: renames and its fsync go through it */
    char *path;             /* for log lines */
    char *name;             /* basename, relative to dirfd */
    char *tmpname;          /* compaction's temporary file, beside it */
    uint64_t next_id;       /* the next id to hand out */
    uint64_t durable_below; /* every id below this was added in a record already synced */
    bool no_fdatasync;      /* records are written, not flushed: they survive the process only */
    uint64_t synced_end;    /* file bytes known durable; the batch's and pending bytes follow */
    struct buf pend;        /* records not yet known durable nor in the batch */
    struct journal_batch *batch; /* kept from one sync to the next (its buffer too) */
    bool batch_out;              /* between journal_sync_begin and journal_sync_end */
    uint64_t recs;               /* records in the file and the buffer: the compaction policy */
    struct idset live;
    bool dir_unsynced; /* a compaction renamed, but the directory fsync failed */
    bool replaying;
    bool failing; /* the last sync failed: its error was logged */
};

static void header_encode(unsigned char *h, uint64_t first_id)
{
    memcpy(h, MAGIC, 8);
    le32_write(h + 8, VERSION);
    le64_write(h + 12, first_id);
    le32_write(h + 20, crc32_update(0, h, 20));
}

static enum wm_err header_decode(const unsigned char *h, uint64_t *first_id)
{
    if (memcmp(h, MAGIC, 8) != 0 || le32_read(h + 8) != VERSION) return WM_ERR_FORMAT;
    if (crc32_update(0, h, 20) != le32_read(h + 20)) return WM_ERR_FORMAT;
    *first_id = le64_read(h + 12);
    return *first_id ? WM_OK : WM_ERR_FORMAT;
}

static enum wm_err io_fail(const char *what, const struct journal *j)
{
    int e = errno;
    log_error("journal: %s %s: %s", what, j->path, strerror(e));
    errno = e;
    return WM_ERR_IO;
}

/* Splits path into an open directory and copies of the names that live in it. */
static enum wm_err split_path(struct journal *j, const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base || strlen(path) >= PATH_MAX) return WM_ERR_INVAL;
    char dir[PATH_MAX] = ".";
    if (slash) {
        size_t dlen = slash == path ? 1 : (size_t)(slash - path); /* "/journal" is in "/" */
        memcpy(dir, path, dlen);
        dir[dlen] = '\0';
    }
    size_t blen = strlen(base);
    j->path = strdup(path);
    j->name = strdup(base);
    j->tmpname = malloc(blen + sizeof TMP_SUFFIX);
    if (!j->path || !j->name || !j->tmpname) return WM_ERR_NOMEM;
    memcpy(j->tmpname, base, blen);
    memcpy(j->tmpname + blen, TMP_SUFFIX, sizeof TMP_SUFFIX);
    j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return j->dirfd < 0 ? io_fail("cannot open the directory of", j) : WM_OK;
}

/* Starts a fresh file: header, fdatasync, and the directory entry made durable. */
static enum wm_err init_file(struct journal *j)
{
    unsigned char h[HEADER_SIZE];
    header_encode(h, 1);
    if (ftruncate(j->fd, 0) != 0 || fdio_pwrite_all(j->fd, h, sizeof h, 0) < 0 ||
        fsync(j->fd) != 0 || fsync(j->dirfd) != 0)
        return io_fail("cannot initialise", j);
    j->synced_end = HEADER_SIZE;
    j->next_id = 1;
    return WM_OK;
}

/* Drops a torn or corrupt tail, durably, so that new records follow the last good one. */
static enum wm_err cut_tail(struct journal *j, uint64_t good, uint64_t size)
{
    log_warn("journal: %s: torn or corrupt record at offset %llu, dropping its last %llu bytes",
             j->path, (unsigned long long)good, (unsigned long long)(size - good));
    /* fsync, not fdatasync: the new size is the point. */
    if (ftruncate(j->fd, (off_t)good) != 0 || fsync(j->fd) != 0)
        return io_fail("cannot truncate", j);
    return WM_OK;
}

/* Reads every record once to rebuild the live set and find where valid data ends. */
static enum wm_err scan(struct journal *j, uint64_t size)
{
    struct reader r;
    enum wm_err err = reader_init(&r, j->fd, HEADER_SIZE, size);
    if (err != WM_OK) return err;
    struct record rec;
    enum rd rd;
    uint64_t max_id = 0;
    while ((rd = reader_next(&r, &rec)) == RD_OK) {
        j->recs++;
        if (rec.id > max_id) max_id = rec.id;
        if (rec.type == REC_DONE)
            idset_del(&j->live, rec.id);
        else if ((err = idset_put(&j->live, rec.id)) != WM_OK)
            break;
    }
    uint64_t good = reader_offset(&r);
    free(r.buf);
    if (err != WM_OK) return err;
    if (rd == RD_IO) return io_fail("cannot read", j);
    if (max_id >= j->next_id) j->next_id = max_id + 1;
    j->synced_end = good;
    return rd == RD_BAD ? cut_tail(j, good, size) : WM_OK;
}

static enum wm_err load(struct journal *j)
{
    struct stat st;
    if (fstat(j->fd, &st) != 0) return io_fail("cannot stat", j);
    if (!S_ISREG(st.st_mode)) return WM_ERR_INVAL;
    uint64_t size = (uint64_t)st.st_size;
    /* Shorter than a header: a crash while creating it, before any record could exist. */
    if (size < HEADER_SIZE) {
        if (size > 0) log_warn("journal: %s: incomplete header, starting afresh", j->path);
        return init_file(j);
    }
    unsigned char h[HEADER_SIZE];
    ssize_t n = pread(j->fd, h, sizeof h, 0);
    if (n != (ssize_t)sizeof h) return io_fail("cannot read", j);
    if (header_decode(h, &j->next_id) != WM_OK) {
        log_error("journal: %s is not a wmesh journal (bad header)", j->path);
        return WM_ERR_FORMAT;
    }
    return scan(j, size);
}

static void journal_free(struct journal *j)
{
    if (j->fd >= 0) close(j->fd);
    if (j->dirfd >= 0) close(j->dirfd);
    free(j->path);
    free(j->name);
    free(j->tmpname);
    free(j->live.slot);
    buf_free(&j->pend);
    if (j->batch) buf_free(&j->batch->data);
    free(j->batch);
    free(j);
}

struct journal *journal_open(const char *path, enum wm_err *errp)
{
    enum wm_err err = WM_ERR_INVAL;
    struct journal *j = NULL;
    if (!path || !*path) goto fail;
    pthread_once(&crc_once, crc_init);
    err = WM_ERR_NOMEM;
    j = calloc(1, sizeof *j);
    if (!j) goto fail;
    j->fd = j->dirfd = -1;
    if ((err = split_path(j, path)) != WM_OK) goto fail;
    if ((err = idset_resize(&j->live, IDSET_MIN_BITS)) != WM_OK) goto fail;
    j->fd = openat(j->dirfd, j->name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (j->fd < 0) {
        err = io_fail("cannot open", j);
        goto fail;
    }
    if (flock(j->fd, LOCK_EX | LOCK_NB) != 0) {
        err = errno == EWOULDBLOCK ? WM_ERR_EXISTS : WM_ERR_IO;
        log_error("journal: %s: %s", path,
                  err == WM_ERR_EXISTS ? "in use by another peer" : strerror(errno));
        goto fail;
    }
    if ((err = load(j)) != WM_OK) goto fail;
    /* Left by a compaction that a crash interrupted; the journal itself is intact. */
    (void)unlinkat(j->dirfd, j->tmpname, 0);
    if (errp) *errp = WM_OK;
    return j;
fail:;
    int e = err == WM_ERR_NOMEM ? ENOMEM : err == WM_ERR_IO ? errno : EINVAL;
    if (j) journal_free(j);
    if (errp) *errp = err;
    errno = e;
    return NULL;
}

void journal_close(struct journal **jp)
{
    if (!jp || !*jp) return;
    struct journal *j = *jp;
    if (journal_sync(j) != WM_OK)
        log_error("journal: %s: closing with %zu unsynced bytes lost", j->path, j->pend.len);
    journal_free(j);
    *jp = NULL;
}

static enum wm_err add_parts(struct journal *j, const struct part *parts, size_t n, uint64_t *id)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += parts[i].len;
    if (len > JOURNAL_RECORD_MAX) return WM_ERR_TOOBIG;
    enum wm_err err = idset_put(&j->live, j->next_id);
    if (err != WM_OK) return err;
    err = buf_record(&j->pend, REC_ADD, j->next_id, parts, n, PEND_MAX);
    if (err != WM_OK) {
        idset_del(&j->live, j->next_id);
        return err;
    }
    j->recs++;
    *id = j->next_id++;
    return WM_OK;
}

enum wm_err journal_add(struct journal *j, const void *record, size_t len, uint64_t *id)
{
    if (!j || !id || (!record && len)) return WM_ERR_INVAL;
    struct part part = {record, len};
    return add_parts(j, &part, 1, id);
}

/* ---- the peer's entries ---- */

enum wm_err journal_add_entry(struct journal *j, const struct journal_entry *e, uint64_t *id)
{
    if (!j || !e || !id || (!e->payload && e->len) || (!e->topic && e->topic_len))
        return WM_ERR_INVAL;
    if (e->len > JOURNAL_RECORD_MAX - JOURNAL_ENTRY_HEAD) return WM_ERR_TOOBIG;
    /* The topic only matters to --post-topic copy, which falls back to the relPath's topic
     * without it: a topic that does not fit is left out rather than the announcement. */
    size_t tlen = e->topic_len;
    if (tlen > 0xffffu || tlen > JOURNAL_RECORD_MAX - JOURNAL_ENTRY_HEAD - e->len) tlen = 0;
    unsigned char head[JOURNAL_ENTRY_HEAD] = {
        JOURNAL_ENTRY_VERSION, 0, (unsigned char)(tlen & 0xffu), (unsigned char)(tlen >> 8)};
    struct part parts[3] = {{head, sizeof head}, {e->topic, tlen}, {e->payload, e->len}};
    return add_parts(j, parts, 3, id);
}

enum wm_err journal_entry_read(const void *record, size_t len, struct journal_entry *e)
{
    if (!e || (!record && len)) return WM_ERR_INVAL;
    const unsigned char *r = record;
    *e = (struct journal_entry){0};
    /* Version 1: the announcement re-encoded as JSON text, nothing else. */
    if (len > 0 && (r[0] == '{' || r[0] == '[' || r[0] == ' ' || r[0] == '\t' || r[0] == '\n' ||
                    r[0] == '\r')) {
        e->version = 1;
        e->payload = r;
        e->len = len;
        return WM_OK;
    }
    if (len == 0) return WM_ERR_FORMAT;
    e->version = r[0];
    if (r[0] != JOURNAL_ENTRY_VERSION || len < JOURNAL_ENTRY_HEAD) return WM_ERR_FORMAT;
    size_t tlen = le16_read(r + 2);
    if (tlen > len - JOURNAL_ENTRY_HEAD) return WM_ERR_FORMAT;
    e->topic = tlen ? (const char *)r + JOURNAL_ENTRY_HEAD : NULL;
    e->topic_len = tlen;
    e->payload = r + JOURNAL_ENTRY_HEAD + tlen;
    e->len = len - JOURNAL_ENTRY_HEAD - tlen;
    return WM_OK;
}

#define OUTBOX_HEAD 13u /* bytes before the checksum's */

enum wm_err journal_add_outbox(struct journal *j, const struct journal_outbox *o, uint64_t *id)
{
    if (!j || !o || !id || !o->topic || (!o->message && o->len) || (!o->key && o->key_len) ||
        (!o->origin.payload && o->origin.len) || (!o->origin.topic && o->origin.topic_len))
        return WM_ERR_INVAL;
    size_t sumlen = o->key ? o->sum.len : 0;
    if (o->topic_len > 0xffffu || o->key_len > 0xffffu || sumlen > WM_SUM_MAX_LEN ||
        o->len > 0xffffffffu)
        return WM_ERR_TOOBIG;
    size_t base = OUTBOX_HEAD + sumlen + o->key_len + o->topic_len;
    if (o->len > JOURNAL_RECORD_MAX - base) return WM_ERR_TOOBIG;
    size_t room = JOURNAL_RECORD_MAX - base - o->len;
    size_t otlen = o->origin.topic_len > 0xffffu ? 0 : o->origin.topic_len;
    bool origin = o->origin.payload && 2 + o->origin.len <= room;
    if (origin && 2 + otlen + o->origin.len > room) otlen = 0; /* the topic is the lesser part */
    unsigned char head[OUTBOX_HEAD];
    head[0] = JOURNAL_OUTBOX_VERSION;
    head[1] = (unsigned char)((o->key ? JOURNAL_OUTBOX_HAS_FILE : 0) |
                              (origin ? JOURNAL_OUTBOX_HAS_ORIGIN : 0));
    le16_write(head + 2, (uint16_t)o->key_len);
    le16_write(head + 4, (uint16_t)o->topic_len);
    le32_write(head + 6, (uint32_t)o->len);
    head[10] = (unsigned char)(o->key ? o->sum.method : 0);
    head[11] = (unsigned char)(o->key ? o->sum.cod_method : 0);
    head[12] = (unsigned char)sumlen;
    unsigned char ohead[2];
    le16_write(ohead, (uint16_t)otlen);
    struct part parts[] = {{head, sizeof head},
                           {o->sum.value, sumlen},
                           {o->key, o->key_len},
                           {o->topic, o->topic_len},
                           {o->message, o->len},
                           {ohead, origin ? sizeof ohead : 0},
                           {o->origin.topic, origin ? otlen : 0},
                           {o->origin.payload, origin ? o->origin.len : 0}};
    return add_parts(j, parts, sizeof parts / sizeof parts[0], id);
}

int journal_record_version(const void *record, size_t len)
{
    const unsigned char *r = record;
    if (!r || len == 0) return 0;
    if (r[0] == '{' || r[0] == '[' || r[0] == ' ' || r[0] == '\t' || r[0] == '\n' || r[0] == '\r')
        return 1;
    return r[0] == JOURNAL_ENTRY_VERSION || r[0] == JOURNAL_OUTBOX_VERSION ? r[0] : 0;
}

enum wm_err journal_outbox_read(const void *record, size_t len, struct journal_outbox *o)
{
    if (!o || (!record && len)) return WM_ERR_INVAL;
    const unsigned char *r = record;
    *o = (struct journal_outbox){0};
    if (len < OUTBOX_HEAD || r[0] != JOURNAL_OUTBOX_VERSION) return WM_ERR_FORMAT;
    size_t key_len = le16_read(r + 2), topic_len = le16_read(r + 4), sumlen = r[12];
    size_t mlen = le32_read(r + 6);
    bool file = r[1] & JOURNAL_OUTBOX_HAS_FILE;
    if (sumlen > WM_SUM_MAX_LEN || (!file && (sumlen || key_len)) || topic_len == 0)
        return WM_ERR_FORMAT;
    size_t left = len - OUTBOX_HEAD;
    if (sumlen > left || key_len > left - sumlen || topic_len > left - sumlen - key_len ||
        mlen > left - sumlen - key_len - topic_len)
        return WM_ERR_FORMAT;
    const unsigned char *c = r + OUTBOX_HEAD;
    if (file) {
        o->sum.method = (enum wm_sum)r[10];
        o->sum.cod_method = (enum wm_sum)r[11];
        o->sum.len = sumlen;
        memcpy(o->sum.value, c, sumlen);
        o->key = (const char *)c + sumlen;
        o->key_len = key_len;
    }
    c += sumlen + key_len;
    o->topic = (const char *)c;
    o->topic_len = topic_len;
    o->message = c + topic_len;
    o->len = mlen;
    c += topic_len + mlen;
    left -= sumlen + key_len + topic_len + mlen;
    if (!(r[1] & JOURNAL_OUTBOX_HAS_ORIGIN)) return left == 0 ? WM_OK : WM_ERR_FORMAT;
    if (left < 2 || le16_read(c) > left - 2) return WM_ERR_FORMAT;
    o->origin.version = JOURNAL_ENTRY_VERSION;
    o->origin.topic_len = le16_read(c);
    o->origin.topic = o->origin.topic_len ? (const char *)c + 2 : NULL;
    o->origin.payload = c + 2 + o->origin.topic_len;
    o->origin.len = left - 2 - o->origin.topic_len;
    return WM_OK;
}

enum wm_err journal_done(struct journal *j, uint64_t id)
{
    if (!j || id == 0) return WM_ERR_INVAL;
    if (!idset_has(&j->live, id)) return WM_ERR_NOTFOUND;
    /* A done is tiny; refusing it at PEND_MAX would only make the caller retry, so it gets a
     * little headroom beyond the limit that adds face. */
    enum wm_err err = buf_record(&j->pend, REC_DONE, id, NULL, 0, PEND_MAX + PEND_KEEP);
    if (err != WM_OK) return err;
    idset_del(&j->live, id);
    j->recs++;
    return WM_OK;
}

/* Logs the first failure of a run only: the peer retries every loop turn. */
static enum wm_err sync_fail(struct journal *j, const char *what)
{
    int e = errno;
    if (!j->failing) log_error("journal: %s %s: %s (retrying)", what, j->path, strerror(e));
    j->failing = true;
    errno = e;
    return WM_ERR_IO;
}

enum wm_err journal_sync_begin(struct journal *j, struct journal_batch **out)
{
    if (!j || !out || j->batch_out) return WM_ERR_INVAL;
    *out = NULL;
    if (j->pend.len == 0 && !j->dir_unsynced) return WM_OK;
    if (!j->batch && !(j->batch = calloc(1, sizeof *j->batch))) return WM_ERR_NOMEM;
    struct journal_batch *b = j->batch;
    /* The buffers trade places: records added from now on go to the batch's old, empty one. */
    struct buf spare = b->data;
    *b = (struct journal_batch){.fd = j->fd,
                                .dirfd = j->dirfd,
                                .fdatasync = !j->no_fdatasync,
                                .dir = j->dir_unsynced,
                                .offset = j->synced_end,
                                .next_id = j->next_id,
                                .data = j->pend};
    j->pend = spare;
    j->pend.len = 0;
    j->batch_out = true;
    *out = b;
    return WM_OK;
}

static enum wm_err batch_fail(struct journal_batch *b, const char *what)
{
    b->error = errno;
    b->failed = what;
    return WM_ERR_IO;
}

enum wm_err journal_batch_write(struct journal_batch *b)
{
    if (!b) return WM_ERR_INVAL;
    b->failed = NULL;
    if (b->data.len) {
        if (fdio_pwrite_all(b->fd, b->data.data, b->data.len, b->offset) < 0)
            return batch_fail(b, "cannot write");
        if (b->fdatasync && fdatasync(b->fd) != 0) return batch_fail(b, "cannot sync");
    }
    if (b->dir && fsync(b->dirfd) != 0) return batch_fail(b, "cannot sync the directory of");
    return WM_OK;
}

/* Puts a failed batch's bytes back in front of the pending ones: every byte not known durable
 * is written again by the next sync (see journal_sync in journal.h). */
static void unwind_batch(struct journal *j, struct journal_batch *b)
{
    if (buf_reserve(&b->data, j->pend.len) == WM_OK) {
        if (j->pend.len) memcpy(b->data.data + b->data.len, j->pend.data, j->pend.len);
        b->data.len += j->pend.len;
        struct buf spare = j->pend;
        j->pend = b->data;
        b->data = spare;
        b->data.len = 0;
    } else {
        /* No memory to join them: the records are lost to the file, so their ids must never
         * count as durable and the peer never acknowledges them. Tell it loudly. */
        log_error("journal: %s: out of memory keeping %zu unsynced bytes", j->path, b->data.len);
        b->data.len = 0;
    }
}

void journal_sync_end(struct journal *j, struct journal_batch **bp, enum wm_err result)
{
    if (!j || !bp || !*bp || *bp != j->batch || !j->batch_out) return;
    struct journal_batch *b = *bp;
    *bp = NULL;
    j->batch_out = false;
    if (result != WM_OK) {
        if (b->failed) { /* else it was never written (the caller's failure): nothing to say */
            errno = b->error;
            sync_fail(j, b->failed);
        }
        unwind_batch(j, b);
        return;
    }
    j->durable_below = b->next_id;
    j->synced_end += b->data.len;
    if (b->dir) j->dir_unsynced = false;
    b->data.len = 0;
    if (b->data.cap > PEND_KEEP) buf_free(&b->data);
    if (j->failing) log_info("journal: %s: syncing again", j->path);
    j->failing = false;
}

enum wm_err journal_sync(struct journal *j)
{
    struct journal_batch *b = NULL;
    enum wm_err err = journal_sync_begin(j, &b);
    if (err != WM_OK || !b) return err;
    err = journal_batch_write(b);
    int e = errno;
    journal_sync_end(j, &b, err);
    errno = e;
    return err;
}

void journal_set_fdatasync(struct journal *j, bool on)
{
    if (j) j->no_fdatasync = !on;
}

bool journal_is_durable(const struct journal *j, uint64_t id)
{
    /* With nothing pending, every id handed out is in a synced record. */
    return j && id < j->next_id && ((j->pend.len == 0 && !j->batch_out) || id < j->durable_below);
}

bool journal_dirty(const struct journal *j)
{
    return j && (j->pend.len > 0 || j->dir_unsynced);
}

size_t journal_live(const struct journal *j)
{
    return j ? j->live.count : 0;
}

uint64_t journal_size(const struct journal *j)
{
    return j ? j->synced_end + (j->batch_out ? j->batch->data.len : 0) + j->pend.len : 0;
}

enum wm_err journal_replay(struct journal *j,
                           void (*fn)(void *arg, uint64_t id, const void *record, size_t len),
                           void *arg)
{
    if (!j || !fn || j->replaying || j->batch_out) return WM_ERR_INVAL;
    enum wm_err err = journal_sync(j);
    if (err != WM_OK) return err;
    struct reader r;
    /* Records that fn adds land after synced_end and are not part of this pass. */
    if ((err = reader_init(&r, j->fd, HEADER_SIZE, j->synced_end)) != WM_OK) return err;
    j->replaying = true;
    struct record rec;
    enum rd rd;
    while ((rd = reader_next(&r, &rec)) == RD_OK)
        if (rec.type == REC_ADD && idset_has(&j->live, rec.id))
            fn(arg, rec.id, rec.len ? rec.payload : NULL, rec.len);
    j->replaying = false;
    free(r.buf);
    if (rd == RD_IO) return io_fail("cannot read", j);
    if (rd == RD_BAD) {
        log_error("journal: %s: a record checked at open no longer does", j->path);
        return WM_ERR_FORMAT;
    }
    return WM_OK;
}

enum wm_err journal_maybe_compact(struct journal *j)
{
    if (!j) return WM_ERR_INVAL;
    if (j->batch_out) return WM_OK; /* a sync is on its way: next time */
    if (journal_size(j) < JOURNAL_COMPACT_MIN || j->live.count * 4 > j->recs) return WM_OK;
    return journal_compact(j);
}

/* Streams the live adds of the current file into out_fd, flushing every COMPACT_FLUSH bytes.
 * *size gets the new file's length. */
static enum wm_err copy_live(struct journal *j, int out_fd, uint64_t *size)
{
    struct buf out = {0};
    struct reader r;
    enum wm_err err = reader_init(&r, j->fd, HEADER_SIZE, j->synced_end);
    if (err != WM_OK) return err;
    if ((err = buf_reserve(&out, COMPACT_FLUSH + REC_MAX)) != WM_OK) goto out;
    header_encode(out.data, j->next_id);
    out.len = HEADER_SIZE;
    uint64_t off = 0;
    size_t copied = 0;
    struct record rec;
    enum rd rd;
    while ((rd = reader_next(&r, &rec)) == RD_OK) {
        if (rec.type != REC_ADD || !idset_has(&j->live, rec.id)) continue;
        memcpy(out.data + out.len, rec.raw, rec.size);
        out.len += rec.size;
        copied++;
        if (out.len < COMPACT_FLUSH) continue;
        if (fdio_pwrite_all(out_fd, out.data, out.len, off) < 0) goto io;
        off += out.len;
        out.len = 0;
    }
    if (rd == RD_IO) goto io;
    err = WM_ERR_FORMAT;
    if (rd == RD_BAD || copied != j->live.count) {
        log_error("journal: %s: records changed under the journal, not compacting", j->path);
        goto out;
    }
    if (fdio_pwrite_all(out_fd, out.data, out.len, off) < 0) goto io;
    *size = off + out.len;
    err = WM_OK;
    goto out;
io:
    err = io_fail("cannot compact", j);
out:
    free(r.buf);
    buf_free(&out);
    return err;
}

enum wm_err journal_compact(struct journal *j)
{
    if (!j || j->replaying || j->batch_out) return WM_ERR_INVAL;
    enum wm_err err = journal_sync(j);
    if (err != WM_OK) return err;
    int fd =
        openat(j->dirfd, j->tmpname, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return io_fail("cannot create the compaction file for", j);
    uint64_t size = 0;
    /* Locked before the rename, so the path is never unlocked while we use it. */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        err = io_fail("cannot lock the compaction file for", j);
        goto fail;
    }
    if ((err = copy_live(j, fd, &size)) != WM_OK) goto fail;
    if (fsync(fd) != 0 || renameat(j->dirfd, j->tmpname, j->dirfd, j->name) != 0) {
        err = io_fail("cannot complete the compaction of", j);
        goto fail;
    }
    /* From here the new file is the journal, whatever else fails. */
    close(j->fd);
    j->fd = fd;
    j->synced_end = size;
    j->recs = j->live.count;
    j->dir_unsynced = true;
    /* Until the directory is synced a crash may bring the old file back, and records
     * appended to the new one would be lost; journal_sync retries this fsync. */
    return journal_sync(j);
fail:
    close(fd);
    (void)unlinkat(j->dirfd, j->tmpname, 0);
    return err;
}
