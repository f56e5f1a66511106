/* fetch.c: the only file that includes <curl/curl.h>: event-driven downloads on the loop. */
#include "fetch.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

#define RECV_BUFFER (512L * 1024)

struct transfer {
    CURL *easy;
    fetch_data_fn data;
    fetch_done_fn done;
    void *arg;
    int64_t bytes;
    int64_t max_size;
    bool aborted_by_caller;
    bool too_big;
    char errbuf[CURL_ERROR_SIZE];
    struct transfer *next; /* free list, or the active list */
    struct transfer *prev; /* active list */
};

/* What the fetcher knows of one descriptor number. */
struct sock {
    unsigned events;  /* LOOP_READ | LOOP_WRITE as last registered with the loop; 0: none */
    bool ours;        /* a connection socket curl opened through open_socket and has not closed */
    bool established; /* ours and once watched for reading (see open_socket) */
    bool parked;      /* curl stopped watching it; the loop still does until the turn ends */
};

struct fetcher {
    struct loop *loop;
    CURLM *multi;
    struct loop_timer *timer;
    struct fetch_options opts;
    size_t active;
    struct transfer *spare; /* finished transfers kept for reuse */
    size_t nspare;
    struct transfer *running; /* transfers added to the multi handle */
    /* Indexed by descriptor. A finished transfer leaves its keep-alive connection idle, and
     * curl stops watching it; the next transfer, usually started in the same loop turn, takes
     * it up again. Taking it off epoll and adding it back would cost two epoll_ctl calls, so it
     * is only parked, and the pre-wait hook unwatches what is still parked then. Only sockets
     * that curl closes through close_socket are parked (see open_socket), so a parked number is
     * never reused behind our back. */
    struct sock *socks;
    size_t nsocks;
    size_t nparked;
};

static void link_running(struct fetcher *f, struct transfer *t)
{
    t->prev = NULL;
    t->next = f->running;
    if (f->running) f->running->prev = t;
    f->running = t;
}

static void unlink_running(struct fetcher *f, struct transfer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        f->running = t->next;
    if (t->next) t->next->prev = t->prev;
    t->next = t->prev = NULL;
}

static bool global_init_done;

static enum wm_err global_init(void)
{
    if (global_init_done) return WM_OK;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return WM_ERR_LIB;
    global_init_done = true;
    return WM_OK;
}

static void check_done(struct fetcher *f);

/* The state of descriptor fd, growing the table as needed; NULL when out of memory. */
static struct sock *sock_at(struct fetcher *f, int fd)
{
    if (fd < 0) return NULL;
    if ((size_t)fd >= f->nsocks) {
        size_t n = f->nsocks ? f->nsocks : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct sock *grown = realloc(f->socks, n * sizeof *grown);
        if (!grown) return NULL;
        memset(grown + f->nsocks, 0, (n - f->nsocks) * sizeof *grown);
        f->socks = grown;
        f->nsocks = n;
    }
    return &f->socks[fd];
}

static void unwatch(struct fetcher *f, int fd, struct sock *k)
{
    loop_unwatch(f->loop, fd);
    if (!k) return;
    if (k->parked) f->nparked--;
    k->parked = false;
    k->events = 0;
}

/* Pre-wait hook: what curl did not take up again this turn stops being watched before the
 * loop sleeps, or an idle connection closed by its server would wake it at every turn. */
static void unwatch_parked(void *arg)
{
    struct fetcher *f = arg;
    for (size_t fd = 0; f->nparked > 0 && fd < f->nsocks; fd++)
        if (f->socks[fd].parked) unwatch(f, (int)fd, &f->socks[fd]);
}

static void on_socket_event(void *arg, int fd, unsigned events)
{
    struct fetcher *f = arg;
    int mask = 0, running = 0;
    if (events & LOOP_READ) mask |= CURL_CSELECT_IN;
    if (events & LOOP_WRITE) mask |= CURL_CSELECT_OUT;
    if (events & LOOP_ERROR) mask |= CURL_CSELECT_ERR;
    curl_multi_socket_action(f->multi, fd, mask, &running);
    check_done(f);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct fetcher *f = userp;
    (void)easy;
    (void)socketp;
    struct sock *k = sock_at(f, s);
    if (what == CURL_POLL_REMOVE) {
        if (k && k->established && k->events && !k->parked) {
            k->parked = true;
            f->nparked++;
        } else if (!k || !k->parked) {
            unwatch(f, s, k);
        }
        return 0;
    }
    unsigned ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev |= LOOP_READ;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev |= LOOP_WRITE;
    if (k && k->parked) {
        k->parked = false;
        f->nparked--;
        if (k->events == ev) return 0; /* still registered as wanted: nothing to do */
    }
    if (loop_watch(f->loop, s, ev, on_socket_event, f) != WM_OK) return -1;
    if (k) {
        k->events = ev;
        if (ev & LOOP_READ) k->established = k->ours;
    }
    return 0;
}

/* Connection sockets are opened here to know which ones curl closes through close_socket: all
 * those of established connections. (curl 7.88 closes a socket that never became the
 * connection's, such as the loser of a happy-eyeballs race, with close(2) directly; such a
 * socket is only ever watched for writing, while connecting, so being watched for reading is
 * what tells an established one.) CLOEXEC too, which curl does not set itself. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct fetcher *f = clientp;
    int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd < 0) return CURL_SOCKET_BAD;
    struct sock *k = sock_at(f, fd);
    if (k) {
        if (k->parked) f->nparked--; /* the number was closed without us: forget it */
        *k = (struct sock){.ours = purpose == CURLSOCKTYPE_IPCXN};
    }
    return fd;
}

static int close_socket(void *clientp, curl_socket_t fd)
{
    struct fetcher *f = clientp;
    struct sock *k = fd >= 0 && (size_t)fd < f->nsocks ? &f->socks[fd] : NULL;
    /* Normally parked by CURL_POLL_REMOVE just before: unwatch while the number is still ours. */
    if (k && (k->parked || k->events)) unwatch(f, fd, k);
    if (k) k->ours = k->established = false;
    return close(fd);
}

static void on_timeout(void *arg)
{
    struct fetcher *f = arg;
    int running = 0;
    f->timer = NULL;
    curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(f);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct fetcher *f = userp;
    (void)multi;
    loop_timer_cancel(f->loop, &f->timer);
    if (timeout_ms >= 0) f->timer = loop_timer_add(f->loop, timeout_ms, on_timeout, f);
    return 0;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct transfer *t = userdata;
    size_t n = size * nmemb;
    t->bytes += (int64_t)n;
    /* curl only enforces MAXFILESIZE when the length is announced; chunked bodies end here. */
    if (t->max_size > 0 && t->bytes > t->max_size) {
        t->too_big = true;
        return 0;
    }
    if (t->data && t->data(t->arg, ptr, n) != 0) {
        t->aborted_by_caller = true;
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

static enum wm_err map_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return WM_OK;
    case CURLE_OUT_OF_MEMORY:
        return WM_ERR_NOMEM;
    case CURLE_FILESIZE_EXCEEDED:
        return WM_ERR_TOOBIG;
    case CURLE_WRITE_ERROR:
        return WM_ERR_IO;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return WM_ERR_INVAL;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return WM_ERR_CONN;
    default:
        return WM_ERR_PROTOCOL;
    }
}

static void recycle(struct fetcher *f, struct transfer *t)
{
    if (f->nspare >= 64) {
        curl_easy_cleanup(t->easy);
        free(t);
        return;
    }
    t->next = f->spare;
    f->spare = t;
    f->nspare++;
}

static void finish(struct fetcher *f, CURLMsg *msg)
{
    struct transfer *t = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
    long status = 0;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
    CURLcode rc = msg->data.result;
    curl_multi_remove_handle(f->multi, msg->easy_handle);
    unlink_running(f, t);
    f->active--;
    enum wm_err err = map_curl(rc);
    const char *why = rc == CURLE_OK ? "" : (t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
    if (t->aborted_by_caller) why = "aborted by receiver";
    if (t->too_big) {
        err = WM_ERR_TOOBIG;
        why = "larger than the size limit";
    }
    if (err == WM_OK && status != 200) err = WM_ERR_PROTOCOL;
    t->done(t->arg, err, status, why);
    recycle(f, t);
}

static void check_done(struct fetcher *f)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(f->multi, &left)))
        if (msg->msg == CURLMSG_DONE) finish(f, msg);
}

struct fetcher *fetch_new(struct loop *loop, const struct fetch_options *opts)
{
    if (!loop || global_init() != WM_OK) return NULL;
    struct fetcher *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->loop = loop;
    if (opts) f->opts = *opts;
    if (!f->opts.connect_timeout_ms) f->opts.connect_timeout_ms = 10000;
    if (!f->opts.low_speed_time_s) f->opts.low_speed_time_s = 30;
    if (!f->opts.max_per_host) f->opts.max_per_host = 8;
    if (!f->opts.max_total) f->opts.max_total = 64;
    f->multi = curl_multi_init();
    if (!f->multi) {
        free(f);
        return NULL;
    }
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
    curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)f->opts.max_per_host);
    curl_multi_setopt(f->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)f->opts.max_total);
    curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, (long)f->opts.max_total);
    if (loop_add_hook(loop, unwatch_parked, f) != WM_OK) {
        curl_multi_cleanup(f->multi);
        free(f);
        return NULL;
    }
    return f;
}

void fetch_free(struct fetcher **fp)
{
    if (!fp || !*fp) return;
    struct fetcher *f = *fp;
    loop_timer_cancel(f->loop, &f->timer);
    /* Transfers still running are abandoned without their done callbacks. */
    while (f->running) {
        struct transfer *t = f->running;
        unlink_running(f, t);
        curl_multi_remove_handle(f->multi, t->easy);
        curl_easy_cleanup(t->easy);
        free(t);
    }
    while (f->spare) {
        struct transfer *t = f->spare;
        f->spare = t->next;
        curl_easy_cleanup(t->easy);
        free(t);
    }
    /* Closes the cached connections, through close_socket: the loop is still there. */
    curl_multi_cleanup(f->multi);
    unwatch_parked(f);
    loop_remove_hook(f->loop, unwatch_parked, f);
    free(f->socks);
    free(f);
    *fp = NULL;
}

/* Options every transfer gets: only http(s), also after redirects, and timeouts that catch
 * servers that stall instead of failing. */
static void set_common_options(CURL *e, const struct fetch_options *o)
{
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, o->low_speed_time_s);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "wmesh/0.1");
    if (o->max_size > 0) curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_size);
    if (o->cafile) curl_easy_setopt(e, CURLOPT_CAINFO, o->cafile);
}

static struct transfer *take_transfer(struct fetcher *f)
{
    struct transfer *t = f->spare;
    if (t) {
        f->spare = t->next;
        f->nspare--;
        curl_easy_reset(t->easy);
        CURL *keep = t->easy;
        memset(t, 0, sizeof *t);
        t->easy = keep;
        return t;
    }
    t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->easy = curl_easy_init();
    if (!t->easy) {
        free(t);
        return NULL;
    }
    return t;
}

enum wm_err fetch_start(struct fetcher *f, const char *url, fetch_data_fn data, fetch_done_fn done,
                        void *arg)
{
    if (!f || !url || !done) return WM_ERR_INVAL;
    struct transfer *t = take_transfer(f);
    if (!t) return WM_ERR_NOMEM;
    t->data = data;
    t->done = done;
    t->arg = arg;
    t->max_size = f->opts.max_size;
    set_common_options(t->easy, &f->opts);
    curl_easy_setopt(t->easy, CURLOPT_URL, url);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(t->easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(t->easy, CURLOPT_OPENSOCKETDATA, f);
    curl_easy_setopt(t->easy, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
    curl_easy_setopt(t->easy, CURLOPT_CLOSESOCKETDATA, f);
    /* One read, one callback and one write(2) of the file per 512 KiB of a large body, not per
     * 16 KiB: a quarter less CPU for 256 MiB files. curl allocates it per transfer and frees it
     * when the transfer ends, and a small body only touches its first pages. */
    curl_easy_setopt(t->easy, CURLOPT_BUFFERSIZE, RECV_BUFFER);
    if (curl_multi_add_handle(f->multi, t->easy) != CURLM_OK) {
        recycle(f, t);
        return WM_ERR_LIB;
    }
    link_running(f, t);
    f->active++;
    return WM_OK;
}

size_t fetch_active(const struct fetcher *f)
{
    return f ? f->active : 0;
}

struct buffer {
    char *data;
    size_t len, cap;
    bool overflow;
};

static size_t buffer_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct buffer *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n > b->cap) {
        b->overflow = true;
        return 0;
    }
    char *grown = realloc(b->data, b->len + n + 1);
    if (!grown) return 0;
    b->data = grown;
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

enum wm_err fetch_get_buffer(const char *url, size_t cap, char **body, size_t *len,
                             long *http_status)
{
    if (!url || !body || global_init() != WM_OK) return WM_ERR_INVAL;
    CURL *e = curl_easy_init();
    if (!e) return WM_ERR_NOMEM;
    struct fetch_options o = {.connect_timeout_ms = 5000, .low_speed_time_s = 10};
    struct buffer b = {.cap = cap};
    set_common_options(e, &o);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, buffer_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    if (http_status) *http_status = status;
    if (rc != CURLE_OK) {
        free(b.data);
        return b.overflow ? WM_ERR_TOOBIG : map_curl(rc);
    }
    if (!b.data && !(b.data = calloc(1, 1))) return WM_ERR_NOMEM;
    *body = b.data;
    if (len) *len = b.len;
    return WM_OK;
}
