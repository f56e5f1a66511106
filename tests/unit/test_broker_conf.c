/* test_broker_conf.c: mosquitto.conf and ACL rendering, refused values, and the examples in
 * examples/ holding exactly the settings broker_conf renders for them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_conf.h"
#include "test.h"

/* Renders c (its ACL when acl) into a new string; NULL on error. */
static char *render(const struct broker_conf *c, bool acl)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return NULL;
    enum wm_err e = acl ? broker_conf_write_acl(c, f) : broker_conf_write(c, f);
    fclose(f);
    if (e != WM_OK) {
        free(text);
        return NULL;
    }
    return text;
}

static void test_recommended(void)
{
    struct broker_conf c;
    broker_conf_init(&c);
    c.password_file = "/etc/mosquitto/pwfile";
    c.acl_file = "/etc/mosquitto/acl";
    char *text = render(&c, false);
    ASSERT_EQ_STR(text, "listener 1883\n"
                        "allow_anonymous false\n"
                        "password_file /etc/mosquitto/pwfile\n"
                        "acl_file /etc/mosquitto/acl\n"
                        "autosave_interval 60\n"
                        "max_queued_messages 1000000\n"
                        "max_queued_bytes 0\n"
                        "max_inflight_messages 1000\n"
                        "message_size_limit 500000\n"
                        "upgrade_outgoing_qos true\n"
                        "persistent_client_expiration 7d\n");
    free(text);
}

/* What tests/integration/lib.sh asks for: every optional setting but TLS. */
static void test_everything(void)
{
    struct broker_conf c;
    broker_conf_init(&c);
    c.host = "127.0.0.1";
    c.port = 10001;
    c.websockets_port = 10002;
    c.persistence_dir = "/t/b/db"; /* the slash is added */
    c.autosave_interval = 0;
    c.session_expiry = NULL;
    c.log_file = "/t/b.log";
    c.run_as = "tester";
    c.max_queued_messages = 5;
    c.max_inflight_messages = 5;
    c.max_keepalive = 10;
    char *text = render(&c, false);
    ASSERT_EQ_STR(text, "listener 10001 127.0.0.1\n"
                        "listener 10002 127.0.0.1\n"
                        "protocol websockets\n"
                        "allow_anonymous false\n"
                        "persistence true\n"
                        "persistence_location /t/b/db/\n"
                        "max_queued_messages 5\n"
                        "max_queued_bytes 0\n"
                        "max_inflight_messages 5\n"
                        "message_size_limit 500000\n"
                        "upgrade_outgoing_qos true\n"
                        "max_keepalive 10\n"
                        "log_dest file /t/b.log\n"
                        "log_type error\n"
                        "log_type warning\n"
                        "log_type notice\n"
                        "log_type information\n"
                        "connection_messages true\n"
                        "log_timestamp_format %Y-%m-%dT%H:%M:%S\n"
                        "user tester\n");
    free(text);
    c.log_file = "-";
    c.cafile = "ca.pem";
    c.certfile = "server.pem";
    c.keyfile = "server.key";
    c.websockets_port = 0;
    text = render(&c, false);
    ASSERT_TRUE(text && strstr(text, "listener 10001 127.0.0.1\ncafile ca.pem\n"
                                     "certfile server.pem\nkeyfile server.key\n"));
    ASSERT_TRUE(text && strstr(text, "\nlog_dest stderr\n"));
    free(text);
}

static void test_refused(void)
{
    struct broker_conf c;
    broker_conf_init(&c);
    c.password_file = "a\nlistener 1";
    ASSERT_EQ_INT(broker_conf_write(&c, stdout), WM_ERR_INVAL);
    broker_conf_init(&c);
    c.certfile = "server.pem"; /* without cafile and keyfile */
    ASSERT_EQ_INT(broker_conf_write(&c, stdout), WM_ERR_INVAL);
    broker_conf_init(&c);
    c.port = 0;
    ASSERT_EQ_INT(broker_conf_write(&c, stdout), WM_ERR_INVAL);
    broker_conf_init(&c);
    c.websockets_port = c.port;
    ASSERT_EQ_INT(broker_conf_write(&c, stdout), WM_ERR_INVAL);
    broker_conf_init(&c);
    const char *topics[] = {"xpublic/# extra"};
    c.topics = topics;
    ASSERT_EQ_INT(broker_conf_write_acl(&c, stdout), WM_ERR_INVAL);
    ASSERT_EQ_INT(broker_conf_write(NULL, stdout), WM_ERR_INVAL);
}

static void test_acl(void)
{
    struct broker_conf c;
    broker_conf_init(&c);
    char *text = render(&c, true);
    ASSERT_EQ_STR(text,
                  "user owner\ntopic readwrite xpublic/#\n\nuser guest\ntopic read xpublic/#\n");
    free(text);
    const char *topics[] = {"owner:origin/#", "guest:origin/a/wis2/#", "cache/#"};
    c.topics = topics;
    c.ntopics = 3;
    text = render(&c, true);
    ASSERT_EQ_STR(text, "user owner\ntopic readwrite origin/#\ntopic readwrite cache/#\n\n"
                        "user guest\ntopic read origin/a/wis2/#\ntopic read cache/#\n");
    free(text);
    c.guest = "*";
    c.owner = "peer";
    text = render(&c, true);
    ASSERT_EQ_STR(text, "pattern read origin/a/wis2/#\npattern read cache/#\n\n"
                        "user peer\ntopic readwrite origin/#\ntopic readwrite cache/#\n");
    free(text);
}

/* The lines of text that are neither blank nor comments, sorted, joined by newlines. */
static char *settings(const char *text)
{
    char *copy = strdup(text), *rest = copy, *lines[256], *l;
    size_t n = 0, len = 1;
    while ((l = strsep(&rest, "\n")) && n < 256)
        if (l[0] && l[0] != '#') {
            lines[n++] = l;
            len += strlen(l) + 1;
        }
    for (size_t i = 1; i < n; i++) /* insertion sort: a few lines */
        for (size_t j = i; j > 0 && strcmp(lines[j - 1], lines[j]) > 0; j--) {
            char *t = lines[j];
            lines[j] = lines[j - 1];
            lines[j - 1] = t;
        }
    char *out = calloc(1, len), *p = out;
    for (size_t i = 0; i < n; i++)
        p += snprintf(p, len - (size_t)(p - out), "%s\n", lines[i]);
    free(copy);
    return out;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *text = calloc(1, 65536);
    size_t n = text ? fread(text, 1, 65535, f) : 0;
    (void)n;
    fclose(f);
    return text;
}

/* examples/mosquitto-peer.conf and examples/acl carry comments for operators; their settings
 * are exactly what `wmesh broker-config` prints for the example's files (docs/wmesh.1). */
static void check_example(const char *path, const struct broker_conf *c, bool acl)
{
    char *file = slurp(path), *text = render(c, acl);
    if (!file || !text) {
        TEST_FAIL_AT("cannot read %s (run from the top directory) or render it", path);
        free(file);
        free(text);
        return;
    }
    char *want = settings(text), *got = settings(file);
    if (strcmp(want, got) == 0)
        test_passed++;
    else
        TEST_FAIL_AT("%s holds:\n%sbut wmesh broker-config prints:\n%s", path, got, want);
    free(want);
    free(got);
    free(file);
    free(text);
}

static void test_examples(void)
{
    struct broker_conf c;
    broker_conf_init(&c);
    c.password_file = "/etc/mosquitto/pwfile";
    c.acl_file = "/etc/mosquitto/acl";
    check_example("examples/mosquitto-peer.conf", &c, false);
    c.guest = "*";
    check_example("examples/acl", &c, true);
}

int main(void)
{
    test_recommended();
    test_everything();
    test_refused();
    test_acl();
    test_examples();
    return TEST_REPORT();
}
