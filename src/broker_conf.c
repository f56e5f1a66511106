/* broker_conf.c: renders mosquitto.conf and its ACL for a broker next to a wmesh peer. */
#include <string.h>

#include "broker_conf.h"

void broker_conf_init(struct broker_conf *c)
{
    static const char *const topics[] = {BROKER_CONF_TOPIC};
    *c = (struct broker_conf){
        .port = BROKER_CONF_PORT,
        .autosave_interval = BROKER_CONF_AUTOSAVE_S,
        .max_queued_messages = BROKER_CONF_MAX_QUEUED,
        .max_inflight_messages = BROKER_CONF_MAX_INFLIGHT,
        .message_size_limit = BROKER_CONF_MESSAGE_SIZE_LIMIT,
        .session_expiry = BROKER_CONF_SESSION_EXPIRY,
        .owner = BROKER_CONF_OWNER,
        .guest = BROKER_CONF_GUEST,
        .topics = topics,
        .ntopics = 1,
    };
}

/* A value mosquitto reads as one word to the end of its line: none may hold a line break, and
 * names and topics (one word each) no blank either. */
static bool one_line(const char *s)
{
    return !s || (*s && !strpbrk(s, "\r\n"));
}

static bool one_word(const char *s)
{
    return !s || (*s && !strpbrk(s, " \t\r\n"));
}

static bool valid(const struct broker_conf *c)
{
    if (!c || !c->port || c->port > 65535 || c->websockets_port > 65535 ||
        c->websockets_port == c->port)
        return false;
    const char *lines[] = {c->host,          c->cafile,        c->certfile,        c->keyfile,
                           c->password_file, c->acl_file,      c->persistence_dir, c->log_file,
                           c->run_as,        c->session_expiry};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        if (!one_line(lines[i])) return false;
    bool tls = c->cafile || c->certfile || c->keyfile;
    if (tls && !(c->cafile && c->certfile && c->keyfile)) return false;
    if (!one_word(c->host) || !one_word(c->run_as) || !one_word(c->owner) || !one_word(c->guest))
        return false;
    for (size_t i = 0; i < c->ntopics; i++)
        if (!c->topics || !c->topics[i] || !one_word(c->topics[i])) return false;
    return true;
}

static enum wm_err finish(FILE *out)
{
    return ferror(out) || fflush(out) != 0 ? WM_ERR_IO : WM_OK;
}

static void listener(const struct broker_conf *c, unsigned port, FILE *out)
{
    fprintf(out, "listener %u%s%s\n", port, c->host ? " " : "", c->host ? c->host : "");
}

enum wm_err broker_conf_write(const struct broker_conf *c, FILE *out)
{
    if (!valid(c) || !out) return WM_ERR_INVAL;
    listener(c, c->port, out);
    if (c->cafile)
        fprintf(out, "cafile %s\ncertfile %s\nkeyfile %s\n", c->cafile, c->certfile, c->keyfile);
    if (c->websockets_port) {
        listener(c, c->websockets_port, out);
        fputs("protocol websockets\n", out);
    }
    fputs("allow_anonymous false\n", out);
    if (c->password_file) fprintf(out, "password_file %s\n", c->password_file);
    if (c->acl_file) fprintf(out, "acl_file %s\n", c->acl_file);
    if (c->persistence_dir) {
        /* mosquitto appends the file name to the location as it is: the slash is needed. */
        size_t n = strlen(c->persistence_dir);
        fprintf(out, "persistence true\npersistence_location %s%s\n", c->persistence_dir,
                c->persistence_dir[n - 1] == '/' ? "" : "/");
    }
    if (c->autosave_interval) fprintf(out, "autosave_interval %u\n", c->autosave_interval);
    if (c->max_queued_messages) {
        fprintf(out, "max_queued_messages %lu\n", c->max_queued_messages);
        fputs("max_queued_bytes 0\n", out); /* the count alone limits the queue */
    }
    if (c->max_inflight_messages)
        fprintf(out, "max_inflight_messages %lu\n", c->max_inflight_messages);
    if (c->message_size_limit) fprintf(out, "message_size_limit %lu\n", c->message_size_limit);
    /* A peer subscribes with QoS 1: it gets every message at QoS 1 even when its publisher used
     * QoS 0, so the broker queues it while the peer is away. */
    fputs("upgrade_outgoing_qos true\n", out);
    if (c->session_expiry) fprintf(out, "persistent_client_expiration %s\n", c->session_expiry);
    if (c->max_keepalive) fprintf(out, "max_keepalive %u\n", c->max_keepalive);
    if (c->log_file) {
        if (strcmp(c->log_file, "-") == 0)
            fputs("log_dest stderr\n", out);
        else
            fprintf(out, "log_dest file %s\n", c->log_file);
        fputs("log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
              "connection_messages true\nlog_timestamp_format %Y-%m-%dT%H:%M:%S\n",
              out);
    }
    if (c->run_as) fprintf(out, "user %s\n", c->run_as);
    return finish(out);
}

/* The topic t for user kind ("owner" or "guest"), or NULL when it is the other one's only. */
static const char *topic_for(const char *t, const char *kind)
{
    size_t n = strlen(kind);
    if (strncmp(t, kind, n) == 0 && t[n] == ':') return t + n + 1;
    if (strncmp(t, "owner:", 6) == 0 || strncmp(t, "guest:", 6) == 0) return NULL;
    return t;
}

enum wm_err broker_conf_write_acl(const struct broker_conf *c, FILE *out)
{
    if (!valid(c) || !out || !c->owner || !c->guest) return WM_ERR_INVAL;
    bool everyone = strcmp(c->guest, "*") == 0;
    /* Every user's lines first: a `pattern` applies wherever it stands, but reads best alone. */
    if (everyone) {
        for (size_t i = 0; i < c->ntopics; i++) {
            const char *t = topic_for(c->topics[i], "guest");
            if (t) fprintf(out, "pattern read %s\n", t);
        }
        fputc('\n', out);
    }
    fprintf(out, "user %s\n", c->owner);
    for (size_t i = 0; i < c->ntopics; i++) {
        const char *t = topic_for(c->topics[i], "owner");
        if (t) fprintf(out, "topic readwrite %s\n", t);
    }
    if (!everyone) {
        fprintf(out, "\nuser %s\n", c->guest);
        for (size_t i = 0; i < c->ntopics; i++) {
            const char *t = topic_for(c->topics[i], "guest");
            if (t) fprintf(out, "topic read %s\n", t);
        }
    }
    return finish(out);
}
