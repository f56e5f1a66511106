/* catchup_log.c: the catch-up log: epoch, seq reservation, segment files, an in-memory index
 * of every record, pruning and reads (docs/CATCHUP.md, "The log"). */
#include "catchup_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catchup_wire.h"
#include "codec.h"
#include "fdio.h"
#include "json.h"
#include "log.h"

#define DEFAULT_SEGMENT_BYTES ((uint64_t)64 << 20)
#define DEFAULT_MAX_BYTES ((uint64_t)1 << 30)
#define DEFAULT_KEEP_S (24 * 3600)
#define RESERVE_AHEAD 65536
#define SEG_NAME_LEN 26           /* 20 digits + ".jsonl" */
#define SCAN_CHUNK (1u << 20)     /* bytes read at a time when scanning a segment */
#define LINE_MAX_BYTES (4u << 20) /* a longer line is garbage */
#define READ_CHUNK (256u << 10)   /* bytes read at a time when serving */
#define EXAMINE_MAX 200000        /* records one read examines at most, to bound the lock */
#define TIME_LEN 20               /* "YYYYMMDDTHHMMSS.mmmZ" */
#define PREFIX_SEQ "{\"seq\":"
#define PREFIX_TIME ",\"time\":\""
#define PREFIX_TOPIC "\",\"topic\":"

struct segment {
    uint64_t first;    /* the seq in its name, that of its first record */
    uint64_t bytes;    /* its length, buffered records included */
    int64_t newest_ms; /* the time of its newest record */
};

struct record {
    uint64_t seq;
    uint64_t off; /* in its segment */
    int64_t time_ms;
    uint32_t len; /* the line, '\n' included */
};

struct catchup_log {
    pthread_mutex_t mu;
    char epoch[CATCHUP_EPOCH_LEN + 1];
    int dfd; /* the epoch's directory */
    bool sync;
    uint64_t segment_bytes, max_bytes;
    int64_t keep_ms;
    struct segment *segs; /* oldest first; the last is the one written */
    size_t nsegs, segcap;
    struct record *recs; /* in seq order */
    size_t nrecs, reccap;
    uint64_t total_bytes;
    int wfd;         /* the last segment, open for writing; -1 until needed */
    struct buf pend; /* records not written yet, to go at pend_off of the last segment */
    uint64_t pend_off;
    uint64_t next_seq, reserved;
};

/* ---- small files: epoch and reservation ---- */

/* Reads a small file of dfd into buf (NUL-terminated); false when absent or unreadable. */
static bool read_small(int dfd, const char *name, char *buf, size_t cap)
{
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return false;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0) return false;
    buf[n] = '\0';
    return true;
}

/* Replaces name in dfd durably: temporary file, fsync, rename, fsync of the directory. */
static enum wm_err write_small(int dfd, const char *name, const char *text)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return WM_ERR_IO;
    size_t len = strlen(text);
    bool ok = fdio_pwrite_all(fd, text, len, 0) == (ssize_t)len && fsync(fd) == 0;
    if (close(fd) != 0) ok = false;
    if (!ok || renameat(dfd, tmp, dfd, name) != 0 || fsync(dfd) != 0) {
        log_error("catchup: cannot write %s: %s", name, strerror(errno));
        (void)unlinkat(dfd, tmp, 0);
        return WM_ERR_IO;
    }
    return WM_OK;
}

static bool is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* "YYYYMMDDTHHMMSSZ.<8 lowercase hex>" */
static bool epoch_valid(const char *e, size_t len)
{
    if (len != CATCHUP_EPOCH_LEN || e[8] != 'T' || e[15] != 'Z' || e[16] != '.') return false;
    for (size_t i = 0; i < 15; i++)
        if (i != 8 && (e[i] < '0' || e[i] > '9')) return false;
    for (size_t i = 17; i < len; i++)
        if (!is_lower_hex(e[i])) return false;
    return true;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The epoch named in dir/epoch, or a new one written there. */
static enum wm_err load_epoch(int dirfd, char *epoch)
{
    char buf[64];
    if (read_small(dirfd, "epoch", buf, sizeof buf)) {
        size_t len = strcspn(buf, "\n");
        if (epoch_valid(buf, len)) {
            memcpy(epoch, buf, len);
            epoch[len] = '\0';
            return WM_OK;
        }
        log_warn("catchup: the epoch file is unreadable: starting a new log");
    }
    char when[32], uuid[WM_UUID_LEN + 1];
    enum wm_err err = codec_pubtime_format(now_ns(), 0, true, when, sizeof when);
    if (err == WM_OK) err = codec_uuid4(uuid, sizeof uuid); /* its first 8 digits are random */
    if (err != WM_OK) return err;
    if (strlen(when) != 15) return WM_ERR_INVAL;
    snprintf(epoch, CATCHUP_EPOCH_LEN + 1, "%.15sZ.%.8s", when, uuid);
    snprintf(buf, sizeof buf, "%s\n", epoch);
    log_info("catchup: new log, epoch %s", epoch);
    return write_small(dirfd, "epoch", buf);
}

static enum wm_err save_reserved(struct catchup_log *l, uint64_t value)
{
    char text[32];
    snprintf(text, sizeof text, "%" PRIu64 "\n", value);
    enum wm_err err = write_small(l->dfd, "reserved", text);
    if (err == WM_OK) l->reserved = value;
    return err;
}

/* ---- growing the arrays ---- */

static bool grow(void **p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) return true;
    size_t c = *cap ? *cap * 2 : 64;
    if (c > SIZE_MAX / size) return false;
    void *q = realloc(*p, c * size);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

static bool grow_recs(struct catchup_log *l)
{
    return grow((void **)&l->recs, &l->reccap, l->nrecs, sizeof *l->recs);
}

static bool grow_segs(struct catchup_log *l)
{
    return grow((void **)&l->segs, &l->segcap, l->nsegs, sizeof *l->segs);
}

/* ---- scanning at open ---- */

static void segment_name(uint64_t first, char *out, size_t outlen)
{
    snprintf(out, outlen, "%020" PRIu64 ".jsonl", first);
}

/* Reads the fixed prefix of a line: {"seq":N,"time":"YYYYMMDDTHHMMSS.mmmZ","topic":"...
 * and checks that it ends as a record does. */
static bool parse_line(const char *p, size_t len, uint64_t *seq, int64_t *time_ms)
{
    size_t ps = sizeof PREFIX_SEQ - 1, pt = sizeof PREFIX_TIME - 1, pp = sizeof PREFIX_TOPIC - 1;
    if (len < ps + 1 + pt + TIME_LEN + pp + 4 || memcmp(p, PREFIX_SEQ, ps) != 0) return false;
    if (p[len - 1] != '\n' || p[len - 2] != '}') return false;
    size_t digits = 0;
    while (ps + digits < len && p[ps + digits] >= '0' && p[ps + digits] <= '9')
        digits++;
    if (!catchup_seq_parse(p + ps, digits, seq) || *seq == 0) return false;
    const char *t = p + ps + digits;
    if ((size_t)(t - p) + pt + TIME_LEN + pp >= len || memcmp(t, PREFIX_TIME, pt) != 0 ||
        memcmp(t + pt + TIME_LEN, PREFIX_TOPIC, pp) != 0 || t[pt + TIME_LEN - 1] != 'Z')
        return false;
    char text[TIME_LEN + 1];
    memcpy(text, t + pt, TIME_LEN);
    text[TIME_LEN] = '\0';
    int64_t ns = 0;
    int fraction = 0;
    if (codec_pubtime_parse(text, &ns, &fraction) != WM_OK || fraction != 3) return false;
    *time_ms = ns / 1000000;
    return true;
}

/* Indexes the records of segment s, whose file is fd; stops at the first line that is not a
 * record in order. Returns the bytes of good records; -1 on a read error, -2 out of memory. */
static int64_t scan_segment(struct catchup_log *l, int fd, struct segment *s)
{
    struct buf b = {0};
    uint64_t off = 0; /* file offset of b.data[0] */
    size_t first_rec = l->nrecs;
    int64_t good = 0;
    bool eof = false;
    for (;;) {
        size_t pos = 0;
        while (pos < b.len) {
            const char *nl = memchr(b.data + pos, '\n', b.len - pos);
            if (!nl) break;
            size_t len = (size_t)(nl - (const char *)b.data) - pos + 1;
            uint64_t seq = 0;
            int64_t ms = 0;
            uint64_t prev = l->nrecs ? l->recs[l->nrecs - 1].seq : 0;
            if (!parse_line((const char *)b.data + pos, len, &seq, &ms) || seq <= prev ||
                (l->nrecs == first_rec && seq != s->first))
                goto done;
            if (!grow_recs(l)) {
                good = -2;
                goto done;
            }
            l->recs[l->nrecs++] = (struct record){seq, off + pos, ms, (uint32_t)len};
            if (ms > s->newest_ms || l->nrecs == first_rec + 1) s->newest_ms = ms;
            pos += len;
            good = (int64_t)(off + pos);
        }
        buf_consume(&b, pos);
        off += pos;
        if (eof || b.len > LINE_MAX_BYTES) break;
        if (buf_reserve(&b, SCAN_CHUNK) != WM_OK) {
            good = -2;
            break;
        }
        ssize_t n = pread(fd, b.data + b.len, SCAN_CHUNK, (off_t)(off + b.len));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            good = -1;
            break;
        }
        if (n == 0) eof = true;
        b.len += (size_t)n;
    }
done:
    buf_free(&b);
    if (good < 0) l->nrecs = first_rec;
    return good;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The first seqs of the segment files, sorted; *n of them in a new array (NULL when none). */
static enum wm_err list_segments(int dfd, uint64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int fd = dup(dfd);
    if (fd < 0) return WM_ERR_IO;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return WM_ERR_IO;
    }
    rewinddir(d);
    size_t cap = 0;
    enum wm_err err = WM_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t first = 0;
        if (strlen(e->d_name) != SEG_NAME_LEN || strcmp(e->d_name + 20, ".jsonl") != 0) continue;
        const char *digits = e->d_name;
        while (*digits == '0' && digits < e->d_name + 19)
            digits++;
        if (!catchup_seq_parse(digits, (size_t)(e->d_name + 20 - digits), &first) || first == 0)
            continue;
        if (!grow((void **)out, &cap, *n, sizeof **out)) {
            err = WM_ERR_NOMEM;
            break;
        }
        (*out)[(*n)++] = first;
    }
    closedir(d);
    if (*n > 1) qsort(*out, *n, sizeof **out, compare_u64);
    return err;
}

/* Indexes one segment file; drops it (with a log line) when unreadable, truncates a bad tail
 * when it is the last one. */
static enum wm_err load_segment(struct catchup_log *l, uint64_t first, bool last)
{
    char name[SEG_NAME_LEN + 1];
    segment_name(first, name, sizeof name);
    int fd = openat(l->dfd, name, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        log_warn("catchup: leaving out segment %s: %s", name, strerror(errno));
        if (fd >= 0) close(fd);
        return WM_OK;
    }
    if (!grow_segs(l)) {
        close(fd);
        return WM_ERR_NOMEM;
    }
    struct segment s = {.first = first};
    size_t before = l->nrecs;
    int64_t good = scan_segment(l, fd, &s);
    if (good == -2) {
        close(fd);
        return WM_ERR_NOMEM;
    }
    if (good < 0) {
        log_warn("catchup: leaving out segment %s: %s", name, strerror(errno));
    } else if ((uint64_t)good < (uint64_t)st.st_size) {
        log_warn("catchup: segment %s: %s after byte %" PRId64 " (%" PRId64 " bytes)", name,
                 last ? "truncated a torn or garbled tail" : "ignoring what is unreadable", good,
                 (int64_t)st.st_size - good);
        if (last && (ftruncate(fd, (off_t)good) != 0 || fsync(fd) != 0))
            log_error("catchup: cannot truncate %s: %s", name, strerror(errno));
    }
    close(fd);
    if (good <= 0 || l->nrecs == before) {
        /* Nothing usable: an empty last segment is made again by the next append. */
        if (good == 0 && last) (void)unlinkat(l->dfd, name, 0);
        return WM_OK;
    }
    s.bytes = (uint64_t)good;
    l->segs[l->nsegs++] = s;
    l->total_bytes += s.bytes;
    return WM_OK;
}

static enum wm_err load_segments(struct catchup_log *l)
{
    uint64_t *firsts = NULL;
    size_t n = 0;
    enum wm_err err = list_segments(l->dfd, &firsts, &n);
    for (size_t i = 0; err == WM_OK && i < n; i++)
        err = load_segment(l, firsts[i], i + 1 == n);
    free(firsts);
    return err;
}

/* ---- open and close ---- */

static int open_dir(int at, const char *path)
{
    if (mkdirat(at, path, 0700) != 0 && errno != EEXIST) return -1;
    return openat(at, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void free_log(struct catchup_log *l)
{
    if (l->wfd >= 0) close(l->wfd);
    if (l->dfd >= 0) close(l->dfd);
    buf_free(&l->pend);
    free(l->segs);
    free(l->recs);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

struct catchup_log *catchup_log_open(const struct catchup_log_options *o, enum wm_err *err)
{
    enum wm_err ignored;
    if (!err) err = &ignored;
    *err = WM_ERR_INVAL;
    if (!o || !o->dir || !*o->dir) return NULL;
    struct catchup_log *l = calloc(1, sizeof *l);
    if (!l) {
        *err = WM_ERR_NOMEM;
        return NULL;
    }
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l);
        *err = WM_ERR_NOMEM;
        return NULL;
    }
    l->dfd = l->wfd = -1;
    l->sync = o->sync;
    l->segment_bytes = o->segment_bytes ? o->segment_bytes : DEFAULT_SEGMENT_BYTES;
    l->max_bytes = o->max_bytes ? o->max_bytes : DEFAULT_MAX_BYTES;
    l->keep_ms = (o->keep_s > 0 ? o->keep_s : DEFAULT_KEEP_S) * 1000;
    int top = open_dir(AT_FDCWD, o->dir);
    if (top < 0) {
        log_error("catchup: cannot open %s: %s", o->dir, strerror(errno));
        *err = WM_ERR_IO;
        goto fail;
    }
    *err = load_epoch(top, l->epoch);
    if (*err == WM_OK && (l->dfd = open_dir(top, l->epoch)) < 0) {
        log_error("catchup: cannot open %s/%s: %s", o->dir, l->epoch, strerror(errno));
        *err = WM_ERR_IO;
    }
    close(top);
    if (*err != WM_OK) goto fail;
    char text[32];
    uint64_t reserved = 0;
    if (read_small(l->dfd, "reserved", text, sizeof text) &&
        !catchup_seq_parse(text, strcspn(text, "\n"), &reserved))
        log_warn("catchup: the reservation file is unreadable");
    l->reserved = reserved;
    if ((*err = load_segments(l)) != WM_OK) goto fail;
    uint64_t last = l->nrecs ? l->recs[l->nrecs - 1].seq : 0;
    l->next_seq = (last > reserved ? last : reserved) + 1;
    if (l->nsegs) l->pend_off = l->segs[l->nsegs - 1].bytes;
    return l;
fail:
    free_log(l);
    return NULL;
}

static enum wm_err flush_locked(struct catchup_log *l)
{
    if (l->pend.len == 0) return WM_OK;
    if (fdio_pwrite_all(l->wfd, l->pend.data, l->pend.len, l->pend_off) < 0 ||
        (l->sync && fdatasync(l->wfd) != 0)) {
        log_error("catchup: cannot write the log: %s", strerror(errno));
        return WM_ERR_IO;
    }
    l->pend_off += l->pend.len;
    l->pend.len = 0;
    return WM_OK;
}

void catchup_log_close(struct catchup_log **lp)
{
    if (!lp || !*lp) return;
    struct catchup_log *l = *lp;
    if (flush_locked(l) != WM_OK) log_error("catchup: records lost at close");
    /* Every seq up to next_seq - 1 may have been given; none above it. */
    if (l->reserved > l->next_seq - 1 && save_reserved(l, l->next_seq - 1) != WM_OK)
        log_warn("catchup: the next start leaves a hole in the seqs");
    free_log(l);
    *lp = NULL;
}

const char *catchup_log_epoch(const struct catchup_log *l)
{
    return l ? l->epoch : "";
}

uint64_t catchup_log_take_seq(struct catchup_log *l)
{
    if (!l) return 0;
    pthread_mutex_lock(&l->mu);
    uint64_t seq = 0;
    if (l->next_seq < CATCHUP_SEQ_LIMIT &&
        (l->next_seq <= l->reserved || save_reserved(l, l->next_seq - 1 + RESERVE_AHEAD) == WM_OK))
        seq = l->next_seq++;
    pthread_mutex_unlock(&l->mu);
    return seq;
}

/* ---- appending ---- */

/* Closes the segment written and creates the one that begins with seq. */
static enum wm_err new_segment(struct catchup_log *l, uint64_t seq)
{
    if (!grow_segs(l)) return WM_ERR_NOMEM;
    enum wm_err err = flush_locked(l);
    if (err != WM_OK) return err;
    char name[SEG_NAME_LEN + 1];
    segment_name(seq, name, sizeof name);
    int fd = openat(l->dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || (l->sync && fsync(l->dfd) != 0)) {
        log_error("catchup: cannot create segment %s: %s", name, strerror(errno));
        if (fd >= 0) {
            close(fd);
            (void)unlinkat(l->dfd, name, 0);
        }
        return WM_ERR_IO;
    }
    if (l->wfd >= 0) close(l->wfd);
    l->wfd = fd;
    l->pend_off = 0;
    l->segs[l->nsegs++] = (struct segment){.first = seq};
    return WM_OK;
}

/* Opens the last segment for writing when it was loaded at open. */
static enum wm_err open_last(struct catchup_log *l)
{
    if (l->wfd >= 0 || l->nsegs == 0) return WM_OK;
    char name[SEG_NAME_LEN + 1];
    segment_name(l->segs[l->nsegs - 1].first, name, sizeof name);
    l->wfd = openat(l->dfd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (l->wfd >= 0) return WM_OK;
    log_error("catchup: cannot open segment %s: %s", name, strerror(errno));
    return WM_ERR_IO;
}

/* The record's line in a new string: {"seq":N,"time":"...","topic":"...","message":...}\n */
static enum wm_err format_line(uint64_t seq, const char *topic, const char *message, size_t len,
                               int64_t time_ns, char **out, size_t *outlen)
{
    char when[32];
    struct wm_json *t = wm_json_string_new(topic, strlen(topic));
    if (!t) return errno == ENOMEM ? WM_ERR_NOMEM : WM_ERR_INVAL;
    char *quoted = NULL;
    size_t qlen = 0;
    enum wm_err err = wm_json_dump(t, &quoted, &qlen);
    wm_json_free(&t);
    if (err == WM_OK) err = codec_pubtime_format(time_ns, 3, true, when, sizeof when);
    if (err != WM_OK || strlen(when) != TIME_LEN - 1) {
        free(quoted);
        return err != WM_OK ? err : WM_ERR_INVAL;
    }
    size_t cap = qlen + len + 128;
    char *line = malloc(cap);
    if (!line) {
        free(quoted);
        return WM_ERR_NOMEM;
    }
    int n = snprintf(line, cap,
                     PREFIX_SEQ "%" PRIu64 PREFIX_TIME "%sZ" PREFIX_TOPIC "%s,\"message\":", seq,
                     when, quoted);
    free(quoted);
    size_t used = (size_t)n;
    memcpy(line + used, message, len);
    used += len;
    memcpy(line + used, "}\n", 2);
    *out = line;
    *outlen = used + 2;
    return WM_OK;
}

/* A message is one JSON object or array on one line. Its encoder made it (codec.c, whose
 * output is valid JSON by construction and by its tests): checking its outline is enough to
 * keep every line of the log one JSON value, and costs nothing next to a parse. */
static enum wm_err check_message(const char *message, size_t len)
{
    if (!message || len < 2 || memchr(message, '\n', len)) return WM_ERR_INVAL;
    char first = message[0], last = message[len - 1];
    if (!((first == '{' && last == '}') || (first == '[' && last == ']'))) return WM_ERR_INVAL;
    return memchr(message, '\0', len) ? WM_ERR_INVAL : WM_OK;
}

enum wm_err catchup_log_append(struct catchup_log *l, uint64_t seq, const char *topic,
                               const char *message, size_t len, int64_t time_ns)
{
    if (!l || !topic || seq == 0 || seq >= CATCHUP_SEQ_LIMIT || time_ns < 0) return WM_ERR_INVAL;
    enum wm_err err = check_message(message, len);
    char *line = NULL;
    size_t line_len = 0;
    if (err == WM_OK) err = format_line(seq, topic, message, len, time_ns, &line, &line_len);
    if (err != WM_OK) return err;
    if (line_len > LINE_MAX_BYTES) {
        free(line);
        return WM_ERR_TOOBIG;
    }
    pthread_mutex_lock(&l->mu);
    uint64_t last = l->nrecs ? l->recs[l->nrecs - 1].seq : 0;
    if (seq <= last)
        err = WM_ERR_INVAL;
    else if (!grow_recs(l) || buf_reserve(&l->pend, line_len) != WM_OK)
        err = WM_ERR_NOMEM;
    else if (l->nsegs == 0 || l->segs[l->nsegs - 1].bytes >= l->segment_bytes)
        err = new_segment(l, seq);
    else
        err = open_last(l);
    if (err == WM_OK) {
        struct segment *s = &l->segs[l->nsegs - 1];
        int64_t ms = time_ns / 1000000;
        l->recs[l->nrecs++] = (struct record){seq, s->bytes, ms, (uint32_t)line_len};
        if (ms > s->newest_ms || s->bytes == 0) s->newest_ms = ms;
        s->bytes += line_len;
        l->total_bytes += line_len;
        memcpy(l->pend.data + l->pend.len, line, line_len);
        l->pend.len += line_len;
        if (seq >= l->next_seq) l->next_seq = seq + 1;
    }
    pthread_mutex_unlock(&l->mu);
    free(line);
    return err;
}

enum wm_err catchup_log_flush(struct catchup_log *l)
{
    if (!l) return WM_ERR_INVAL;
    pthread_mutex_lock(&l->mu);
    enum wm_err err = flush_locked(l);
    pthread_mutex_unlock(&l->mu);
    return err;
}

void catchup_log_bounds(struct catchup_log *l, uint64_t *first, uint64_t *last)
{
    uint64_t f = 0, z = 0;
    if (l) {
        pthread_mutex_lock(&l->mu);
        if (l->nrecs) {
            f = l->recs[0].seq;
            z = l->recs[l->nrecs - 1].seq;
        }
        pthread_mutex_unlock(&l->mu);
    }
    if (first) *first = f;
    if (last) *last = z;
}

/* ---- pruning ---- */

/* Removes the oldest segment (never the last) and its records. */
static bool drop_oldest(struct catchup_log *l)
{
    char name[SEG_NAME_LEN + 1];
    segment_name(l->segs[0].first, name, sizeof name);
    if (unlinkat(l->dfd, name, 0) != 0 && errno != ENOENT) {
        log_error("catchup: cannot remove segment %s: %s", name, strerror(errno));
        return false;
    }
    size_t n = 0;
    while (n < l->nrecs && l->recs[n].seq < l->segs[1].first)
        n++;
    memmove(l->recs, l->recs + n, (l->nrecs - n) * sizeof *l->recs);
    l->nrecs -= n;
    l->total_bytes -= l->segs[0].bytes;
    memmove(l->segs, l->segs + 1, (l->nsegs - 1) * sizeof *l->segs);
    l->nsegs--;
    return true;
}

void catchup_log_prune(struct catchup_log *l, int64_t now)
{
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    int64_t horizon = now / 1000000 - l->keep_ms;
    while (l->nsegs > 1 && l->segs[0].newest_ms < horizon && drop_oldest(l)) {
    }
    while (l->nsegs > 1 && l->total_bytes > l->max_bytes && drop_oldest(l)) {
    }
    pthread_mutex_unlock(&l->mu);
}

/* ---- reading ---- */

/* The index of the first record with seq > after (nrecs when none). */
static size_t first_after(const struct catchup_log *l, uint64_t after)
{
    size_t lo = 0, hi = l->nrecs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->recs[mid].seq <= after)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The segment holding seq. */
static size_t segment_of(const struct catchup_log *l, uint64_t seq)
{
    size_t lo = 0, hi = l->nsegs;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->segs[mid].first <= seq)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Bytes of the segments read back, a window at a time. */
struct reader {
    int fd;
    size_t seg; /* the segment fd reads; SIZE_MAX when none */
    char *buf;
    uint64_t off; /* file offset of buf[0] */
    size_t len;
};

/* The bytes of record r, from the window or read anew. */
static const char *reader_get(struct catchup_log *l, struct reader *rd, const struct record *r)
{
    size_t seg = segment_of(l, r->seq);
    if (seg != rd->seg) {
        if (rd->fd >= 0) close(rd->fd);
        char name[SEG_NAME_LEN + 1];
        segment_name(l->segs[seg].first, name, sizeof name);
        rd->fd = openat(l->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        rd->seg = rd->fd >= 0 ? seg : SIZE_MAX;
        rd->len = 0;
        if (rd->fd < 0) return NULL;
    }
    if (r->off >= rd->off && r->off + r->len <= rd->off + rd->len)
        return rd->buf + (r->off - rd->off);
    size_t want = r->len > READ_CHUNK ? r->len : READ_CHUNK;
    char *b = realloc(rd->buf, want);
    if (!b) return NULL;
    rd->buf = b;
    ssize_t n;
    do
        n = pread(rd->fd, rd->buf, want, (off_t)r->off);
    while (n < 0 && errno == EINTR);
    rd->off = r->off;
    rd->len = n > 0 ? (size_t)n : 0;
    if (rd->len < r->len) {
        errno = n < 0 ? errno : EIO;
        return NULL;
    }
    return rd->buf;
}

/* The record's topic, unescaped and NUL-terminated, into t. */
static enum wm_err record_topic(const char *line, size_t len, struct buf *t)
{
    const char *q = memmem(line, len, PREFIX_TOPIC, sizeof PREFIX_TOPIC - 1);
    if (!q) return WM_ERR_FORMAT;
    const char *s = q + sizeof PREFIX_TOPIC - 1, *end = line + len, *p = s + 1;
    bool escaped = false;
    while (p < end && *p != '"') {
        if (*p == '\\') {
            escaped = true;
            p++;
        }
        p++;
    }
    if (p >= end) return WM_ERR_FORMAT;
    t->len = 0;
    if (!escaped) {
        size_t n = (size_t)(p - s - 1);
        if (buf_reserve(t, n + 1) != WM_OK) return WM_ERR_NOMEM;
        memcpy(t->data, s + 1, n);
        t->data[n] = '\0';
        return WM_OK;
    }
    struct wm_json *j = NULL;
    enum wm_err err = wm_json_parse(s, (size_t)(p + 1 - s), &j, NULL, 0);
    size_t n = 0;
    const char *text = err == WM_OK ? wm_json_string(j, &n) : NULL;
    if (err == WM_OK && !text) err = WM_ERR_FORMAT;
    if (err == WM_OK && (err = buf_reserve(t, n + 1)) == WM_OK) {
        memcpy(t->data, text, n);
        t->data[n] = '\0';
    }
    wm_json_free(&j);
    return err;
}

/* Where a query begins: the index of its first record, and the seq before it. */
static size_t query_start(const struct catchup_log *l, const struct catchup_read *q, uint64_t until,
                          uint64_t *start)
{
    size_t i = first_after(l, q->after);
    *start = q->after;
    if (!q->use_since) return i;
    while (i < l->nrecs && l->recs[i].time_ms * 1000000 < q->since_ns)
        i++;
    /* Records before it are past for this query: a client resumes after them. */
    uint64_t before = i < l->nrecs ? l->recs[i].seq - 1 : until;
    if (before > until) before = until;
    if (before > *start) *start = before;
    return i;
}

static enum wm_err read_locked(struct catchup_log *l, const struct catchup_read *q, struct buf *out,
                               struct catchup_read_result *res)
{
    enum wm_err err = flush_locked(l);
    if (err != WM_OK) return err;
    res->first = l->nrecs ? l->recs[0].seq : 0;
    res->last = l->nrecs ? l->recs[l->nrecs - 1].seq : 0;
    if (q->check_gone && res->first > 0 && q->after + 1 < res->first) return WM_ERR_NOTFOUND;
    uint64_t until = q->until && q->until < res->last ? q->until : res->last;
    size_t i = query_start(l, q, until, &res->next);
    struct reader rd = {.fd = -1, .seg = SIZE_MAX};
    struct buf topic = {0};
    size_t examined = 0, start_len = out->len;
    for (; i < l->nrecs && l->recs[i].seq <= until; i++) {
        if (res->count >= q->limit || out->len - start_len > q->max_bytes ||
            examined >= EXAMINE_MAX)
            break;
        const struct record *r = &l->recs[i];
        const char *line = reader_get(l, &rd, r);
        if (!line) {
            log_error("catchup: cannot read record %" PRIu64 ": %s", r->seq, strerror(errno));
            err = errno == ENOMEM ? WM_ERR_NOMEM : WM_ERR_IO;
            break;
        }
        bool take = true;
        if (q->match) {
            if ((err = record_topic(line, r->len, &topic)) != WM_OK) break;
            take = q->match(q->match_arg, (const char *)topic.data);
        }
        if (take) {
            if ((err = buf_reserve(out, r->len)) != WM_OK) break;
            memcpy(out->data + out->len, line, r->len);
            out->len += r->len;
            res->count++;
        }
        res->next = r->seq;
        examined++;
    }
    res->more = i < l->nrecs && l->recs[i].seq <= until;
    if (rd.fd >= 0) close(rd.fd);
    free(rd.buf);
    buf_free(&topic);
    return err;
}

enum wm_err catchup_log_read(struct catchup_log *l, const struct catchup_read *q, struct buf *out,
                             struct catchup_read_result *res)
{
    if (!l || !q || !out || !res || q->limit == 0) return WM_ERR_INVAL;
    memset(res, 0, sizeof *res);
    pthread_mutex_lock(&l->mu);
    enum wm_err err = read_locked(l, q, out, res);
    pthread_mutex_unlock(&l->mu);
    return err;
}
