/* test_proxy.c: the choice of a proxy (each variable, their precedence, --proxy and --no-proxy),
 * no_proxy's forms, proxy URL forms, credentials and their redaction; then the wire: absolute-form
 * GET, CONNECT, and the answer to CONNECT fed whole, byte by byte and cut in two everywhere. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http_wire.h"
#include "proxy.h"
#include "test.h"
#include "version.h"

static const char *const all_vars[] = {
    "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ws_proxy",    "WS_PROXY",
    "wss_proxy",  "WSS_PROXY",  "mqtt_proxy",  "MQTT_PROXY",  "mqtts_proxy", "MQTTS_PROXY",
    "all_proxy",  "ALL_PROXY",  "no_proxy",    "NO_PROXY",
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof all_vars / sizeof all_vars[0]; i++)
        unsetenv(all_vars[i]);
}

/* What proxy_for() says for scheme://host: "direct", "host:port (source)", or "error: why". */
static const char *chosen(const struct proxy_config *c, const char *scheme, const char *host)
{
    static char text[512];
    const struct proxy_server *p = NULL;
    char why[256] = "";
    enum wm_err e = proxy_for(c, scheme, host, &p, why, sizeof why);
    if (e != WM_OK)
        snprintf(text, sizeof text, "error: %s", why);
    else if (!p)
        snprintf(text, sizeof text, "direct");
    else
        snprintf(text, sizeof text, "%s:%d (%s)", p->url.host, p->url.port, p->source);
    return text;
}

/* Builds a configuration from the environment as it is and the options; checks it succeeded. */
static void config(struct proxy_config *c, const char *opt, const char *opt_no)
{
    char why[256] = "";
    enum wm_err e = proxy_config_from_env(opt, opt_no, NULL, c, why, sizeof why);
    ASSERT_EQ_INT(e, WM_OK);
    if (e) TEST_FAIL_AT("why: %s", why);
}

static void test_variables(void)
{
    struct proxy_config c;
    clear_env();
    config(&c, NULL, NULL);
    ASSERT_EQ_STR(chosen(&c, "http", "h"), "direct");
    ASSERT_EQ_STR(chosen(&c, "mqtts", "h"), "direct");
    proxy_config_clear(&c);

    /* HTTP_PROXY is never read (httpoxy); the others are, lower case first. */
    setenv("HTTP_PROXY", "upper:1", 1);
    setenv("HTTPS_PROXY", "upper:2", 1);
    config(&c, NULL, NULL);
    ASSERT_EQ_STR(chosen(&c, "http", "h"), "direct");
    ASSERT_EQ_STR(chosen(&c, "https", "h"), "upper:2 (HTTPS_PROXY)");
    ASSERT_EQ_STR(chosen(&c, "ws", "h"), "direct");
    ASSERT_EQ_STR(chosen(&c, "wss", "h"), "upper:2 (HTTPS_PROXY)");
    ASSERT_EQ_STR(chosen(&c, "mqtts", "h"), "direct");
    proxy_config_clear(&c);
    setenv("http_proxy", "lower:3", 1);
    setenv("https_proxy", "lower:4", 1);
    config(&c, NULL, NULL);
    ASSERT_EQ_STR(chosen(&c, "http", "h"), "lower:3 (http_proxy)");
    ASSERT_EQ_STR(chosen(&c, "HTTPS", "h"), "lower:4 (https_proxy)");
    ASSERT_EQ_STR(chosen(&c, "ws", "h"), "lower:3 (http_proxy)");
    ASSERT_EQ_STR(chosen(&c, "wss", "h"), "lower:4 (https_proxy)");
    /* MQTT does not take a web proxy. */
    ASSERT_EQ_STR(chosen(&c, "mqtt", "h"), "direct");
    ASSERT_EQ_STR(chosen(&c, "mqtts", "h"), "direct");
    ASSERT_EQ_STR(chosen(&c, "ftp", "h"), "error: no proxy rule for ftp:// destinations");
    proxy_config_clear(&c);

    /* all_proxy for what has no variable of its own; the scheme's own variables first. */
    setenv("ALL_PROXY", "allup:5", 1);
    config(&c, NULL, NULL);
    ASSERT_EQ_STR(chosen(&c, "mqtt", "h"), "allup:5 (ALL_PROXY)");
    ASSERT_EQ_STR(chosen(&c, "http", "h"), "lower:3 (http_proxy)");
    proxy_config_clear(&c);
    setenv("all_proxy", "all:6", 1);
    setenv("mqtts_proxy", "mq:7", 1);
    setenv("WSS_PROXY", "wssup:8", 1);
    setenv("ws_proxy", "", 1); /* empty: as if unset */
    config(&c, NULL, NULL);
    ASSERT_EQ_STR(chosen(&c, "mqtt", "h"), "all:6 (all_proxy)");
    ASSERT_EQ_STR(chosen(&c, "mqtts", "h"), "mq:7 (mqtts_proxy)");
    ASSERT_EQ_STR(chosen(&c, "wss", "h"), "wssup:8 (WSS_PROXY)");
    ASSERT_EQ_STR(chosen(&c, "ws", "h"), "lower:3 (http_proxy)");
    proxy_config_clear(&c);
    setenv("MQTT_PROXY", "mqup:9", 1);
    config(&c, NULL, NULL);
    ASSERT_EQ_STR(chosen(&c, "mqtt", "h"), "mqup:9 (MQTT_PROXY)");
    proxy_config_clear(&c);

    /* --proxy wins for every scheme; "" and "none" mean no proxy at all. */
    config(&c, "opt:10", NULL);
    for (int i = 0; i < PROXY_SCHEMES; i++)
        ASSERT_EQ_STR(c.slot[i].source, "--proxy");
    ASSERT_EQ_STR(chosen(&c, "mqtt", "h"), "opt:10 (--proxy)");
    ASSERT_EQ_STR(chosen(&c, "http", "h"), "opt:10 (--proxy)");
    proxy_config_clear(&c);
    config(&c, "", NULL);
    ASSERT_EQ_STR(chosen(&c, "https", "h"), "direct");
    proxy_config_clear(&c);
    config(&c, "NONE", NULL);
    ASSERT_EQ_STR(chosen(&c, "mqtts", "h"), "direct");
    proxy_config_clear(&c);
    clear_env();
}

static void test_no_proxy_env(void)
{
    struct proxy_config c;
    clear_env();
    setenv("https_proxy", "p:1", 1);
    setenv("NO_PROXY", "upper.example", 1);
    config(&c, NULL, NULL);
    ASSERT_EQ_STR(chosen(&c, "https", "upper.example"), "direct");
    ASSERT_EQ_STR(chosen(&c, "https", "lower.example"), "p:1 (https_proxy)");
    proxy_config_clear(&c);
    setenv("no_proxy", "lower.example", 1);
    config(&c, NULL, NULL);
    ASSERT_EQ_STR(c.no_proxy_source, "no_proxy");
    ASSERT_EQ_STR(chosen(&c, "https", "upper.example"), "p:1 (https_proxy)");
    ASSERT_EQ_STR(chosen(&c, "https", "www.lower.example"), "direct");
    proxy_config_clear(&c);
    /* --no-proxy replaces the variables; "" bypasses nothing. */
    config(&c, NULL, "other.example");
    ASSERT_EQ_STR(chosen(&c, "https", "lower.example"), "p:1 (https_proxy)");
    ASSERT_EQ_STR(chosen(&c, "https", "other.example"), "direct");
    proxy_config_clear(&c);
    config(&c, NULL, "");
    ASSERT_TRUE(c.no_proxy == NULL);
    ASSERT_EQ_STR(chosen(&c, "https", "lower.example"), "p:1 (https_proxy)");
    proxy_config_clear(&c);
    /* The list also applies to --proxy, as in curl. */
    config(&c, "opt:2", NULL);
    ASSERT_EQ_STR(chosen(&c, "mqtts", "lower.example"), "direct");
    ASSERT_EQ_STR(chosen(&c, "mqtts", "b.example"), "opt:2 (--proxy)");
    proxy_config_clear(&c);
    clear_env();
}

static void test_no_proxy_forms(void)
{
    struct {
        const char *list, *host;
        bool bypassed;
    } cases[] = {
        {"*", "anything.example", true},
        {"a.example, *", "b.example", true},
        {"*", "::1", true},
        {"", "h", false},
        {NULL, "h", false},
        {"example.com", "example.com", true},
        {"example.com", "www.example.com", true},
        {"example.com", "a.b.example.com", true},
        {"example.com", "notexample.com", false},
        {"example.com", "example.com.org", false},
        {".example.com", "example.com", true},
        {".example.com", "www.example.com", true},
        {"*.example.com", "www.example.com", true},
        {"EXAMPLE.com.", "www.Example.COM.", true},
        {"example.com", "example.com.", true},
        {"ample.com", "example.com", false},
        /* Separators: commas and blanks, in any number. */
        {"a.example b.example", "b.example", true},
        {" a.example ,\t, b.example ,", "b.example", true},
        {",,,", "b.example", false},
        /* Ports are not understood: such an entry matches nothing, as in curl. */
        {"example.com:443", "example.com", false},
        {"127.0.0.1:80", "127.0.0.1", false},
        /* IPv4. */
        {"127.0.0.1", "127.0.0.1", true},
        {"127.0.0.1", "127.0.0.2", false},
        {"192.168.0.0/16", "192.168.44.3", true},
        {"192.168.0.0/16", "192.169.0.1", false},
        {"10.0.0.0/8", "10.255.255.255", true},
        {"10.1.2.3/32", "10.1.2.3", true},
        {"10.1.2.3/32", "10.1.2.4", false},
        {"0.0.0.0/0", "203.0.113.9", true},
        {"10.0.0.0/33", "10.0.0.1", false},
        {"10.0.0.0/", "10.0.0.1", false},
        {"10.0.0.0/x", "10.0.0.1", false},
        {"172.16.0.0/12", "172.31.1.1", true},
        {"172.16.0.0/12", "172.32.0.1", false},
        /* Names never match addresses; nothing is resolved. */
        {"localhost", "127.0.0.1", false},
        {"127.0.0.1", "localhost", false},
        {"0.1", "10.0.0.1", false},
        /* IPv6, with or without brackets, on either side. */
        {"::1", "::1", true},
        {"[::1]", "::1", true},
        {"::1", "[::1]", true},
        {"::1", "::2", false},
        {"fe80::/10", "fe80::1:2", true},
        {"fe80::/10", "fec0::1", false},
        {"[2001:db8::]/32", "2001:db8:ffff::1", true},
        {"2001:db8::/32", "2001:db9::1", false},
        {"2001:db8::/129", "2001:db8::1", false},
        {"2001:db8::1", "2001:0db8:0:0::1", true},
        {"127.0.0.1", "::1", false},
        {"localhost, ::1, 127.0.0.0/8", "127.9.9.9", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool got = proxy_bypassed(cases[i].list, cases[i].host);
        if (got == cases[i].bypassed)
            test_passed++;
        else
            TEST_FAIL_AT("no_proxy \"%s\", host %s: %s, expected %s",
                         cases[i].list ? cases[i].list : "(null)", cases[i].host,
                         got ? "bypassed" : "proxied", cases[i].bypassed ? "bypassed" : "proxied");
    }
}

static void test_url_forms(void)
{
    struct proxy_config c;
    char why[256] = "";
    clear_env();
    struct {
        const char *text, *host, *user, *password;
        int port;
    } good[] = {
        {"proxy.example:3128", "proxy.example", NULL, NULL, 3128},
        {"proxy.example", "proxy.example", NULL, NULL, 1080},
        {"http://proxy.example", "proxy.example", NULL, NULL, 1080},
        {"HTTP://proxy.example:8080/", "proxy.example", NULL, NULL, 8080},
        {"http://u:p%40ss@proxy.example:3128", "proxy.example", "u", "p@ss", 3128},
        {"u:pw@10.0.0.1:3128", "10.0.0.1", "u", "pw", 3128},
        {"http://[::1]:3128", "::1", NULL, NULL, 3128},
        {"[::1]", "::1", NULL, NULL, 1080},
        {"http://u@[fe80::1]", "fe80::1", "u", NULL, 1080},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ASSERT_EQ_INT(proxy_config_from_env(good[i].text, NULL, NULL, &c, why, sizeof why), WM_OK);
        const struct proxy_server *p = &c.slot[PROXY_MQTTS];
        ASSERT_EQ_STR(p->url.scheme, "http");
        ASSERT_EQ_STR(p->url.host, good[i].host);
        ASSERT_EQ_INT(p->url.port, good[i].port);
        ASSERT_TRUE((p->url.user == NULL) == (good[i].user == NULL));
        if (good[i].user) ASSERT_EQ_STR(p->url.user, good[i].user);
        ASSERT_TRUE((p->url.password == NULL) == (good[i].password == NULL));
        if (good[i].password) ASSERT_EQ_STR(p->url.password, good[i].password);
        proxy_config_clear(&c);
    }

    /* An unusable --proxy fails at start, without echoing the URL (it may hold a password). */
    struct {
        const char *text;
        enum wm_err err;
        const char *says;
    } bad[] = {
        {"socks5h://u:secret@p:1080", WM_ERR_NOTSUP, "SOCKS"},
        {"socks4://p:1080", WM_ERR_NOTSUP, "SOCKS"},
        {"https://u:secret@p:443", WM_ERR_NOTSUP, "HTTPS proxies"},
        {"ftp://u:secret@p", WM_ERR_INVAL, "unknown proxy scheme \"ftp\""},
        {"http://u:secret@p:99999", WM_ERR_INVAL, "not a proxy URL"},
        {"http://u:secret@:3128", WM_ERR_INVAL, "not a proxy URL"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        ASSERT_EQ_INT(proxy_config_from_env(bad[i].text, NULL, NULL, &c, why, sizeof why),
                      bad[i].err);
        ASSERT_TRUE(strstr(why, "--proxy: ") == why);
        if (!strstr(why, bad[i].says)) TEST_FAIL_AT("\"%s\" lacks \"%s\"", why, bad[i].says);
        ASSERT_TRUE(strstr(why, "secret") == NULL);
    }

    /* An unusable variable is reported when it applies, and only then; no_proxy still wins. */
    setenv("all_proxy", "socks5://u:secret@p:1080", 1);
    setenv("https_proxy", "http://good:3128", 1);
    setenv("no_proxy", "near.example", 1);
    config(&c, NULL, NULL);
    ASSERT_EQ_STR(chosen(&c, "https", "far.example"), "good:3128 (https_proxy)");
    const struct proxy_server *p = NULL;
    why[0] = '\0';
    ASSERT_EQ_INT(proxy_for(&c, "mqtts", "far.example", &p, why, sizeof why), WM_ERR_NOTSUP);
    ASSERT_TRUE(p == NULL);
    ASSERT_TRUE(strstr(why, "all_proxy: SOCKS proxies (socks5://) are not supported") == why);
    ASSERT_TRUE(strstr(why, "secret") == NULL);
    ASSERT_EQ_STR(chosen(&c, "mqtts", "near.example"), "direct");
    proxy_config_clear(&c);
    clear_env();
}

static void test_credentials(void)
{
    char path[] = "/tmp/wmesh-test-proxy-creds.XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    if (fd < 0) return;
    const char *text = "# proxies\nhttp://alice:s3cr%3At@proxy.example:3128\n";
    ASSERT_EQ_INT(write(fd, text, strlen(text)), (intmax_t)strlen(text));
    close(fd);
    enum wm_err err = WM_OK;
    char why[256] = "";
    struct credentials *creds = credentials_load(path, &err, why, sizeof why);
    unlink(path);
    ASSERT_TRUE(creds != NULL);
    if (!creds) return;

    clear_env();
    struct proxy_config c;
    /* A user without a password takes it from the file; another user or port does not. */
    ASSERT_EQ_INT(
        proxy_config_from_env("alice@proxy.example:3128", NULL, creds, &c, why, sizeof why), WM_OK);
    const struct proxy_server *p = &c.slot[PROXY_HTTPS];
    ASSERT_EQ_STR(p->url.user, "alice");
    ASSERT_EQ_STR(p->url.password, "s3cr:t");
    proxy_config_clear(&c);
    ASSERT_EQ_INT(proxy_config_from_env("bob@proxy.example:3128", NULL, creds, &c, why, sizeof why),
                  WM_OK);
    ASSERT_TRUE(c.slot[PROXY_HTTPS].url.password == NULL);
    proxy_config_clear(&c);
    setenv("https_proxy", "http://alice@proxy.example:3128/", 1);
    ASSERT_EQ_INT(proxy_config_from_env(NULL, NULL, creds, &c, why, sizeof why), WM_OK);
    p = &c.slot[PROXY_WSS];
    ASSERT_EQ_STR(p->url.password, "s3cr:t");

    /* The Proxy-Authorization value: base64 of "alice:s3cr:t". */
    char value[HTTP_WIRE_MAX_BASIC];
    ASSERT_EQ_INT(http_wire_basic(p->url.user, p->url.password, value, sizeof value), 22);
    ASSERT_EQ_STR(value, "Basic YWxpY2U6czNjcjp0");
    ASSERT_EQ_INT(http_wire_basic("a", NULL, value, sizeof value), 10);
    ASSERT_EQ_STR(value, "Basic YTo=");
    ASSERT_EQ_INT(http_wire_basic(NULL, "x", value, sizeof value), 0);
    /* Whatever the bytes, base64 keeps them out of the head. */
    ASSERT_EQ_INT(http_wire_basic("a\r\nX: y", "x", value, sizeof value), 18);
    ASSERT_EQ_STR(value, "Basic YQ0KWDogeTp4");
    ASSERT_EQ_INT(http_wire_basic("alice", "s3cr:t", value, 22), 0); /* no room for the NUL */

    /* Descriptions and errors never show the password. */
    char text2[1024];
    proxy_describe(p, text2, sizeof text2);
    ASSERT_EQ_STR(text2, "http://alice@proxy.example:3128 (from https_proxy)");
    proxy_config_describe(&c, text2, sizeof text2);
    ASSERT_TRUE(strstr(text2, "s3cr") == NULL);
    ASSERT_TRUE(strstr(text2, "https: http://alice@proxy.example:3128 (from https_proxy)") != NULL);
    ASSERT_TRUE(strstr(text2, "mqtt: direct") != NULL);
    proxy_refusal(p, 407, "origin.example", 443, text2, sizeof text2);
    ASSERT_EQ_STR(text2, "proxy http://alice@proxy.example:3128 (from https_proxy) refused the "
                         "credentials of alice (407) for origin.example:443");
    proxy_config_clear(&c);
    clear_env();
    credentials_free(&creds);
    ASSERT_TRUE(creds == NULL);
}

static void test_words(void)
{
    struct proxy_config c;
    char text[1024];
    clear_env();
    setenv("http_proxy", "http://u:pw@[::1]:3128", 1);
    setenv("ALL_PROXY", "socks5://p:1", 1);
    setenv("no_proxy", "localhost,.internal", 1);
    config(&c, NULL, NULL);
    proxy_describe(&c.slot[PROXY_HTTP], text, sizeof text);
    ASSERT_EQ_STR(text, "http://u@[::1]:3128 (from http_proxy)");
    proxy_config_describe(&c, text, sizeof text);
    ASSERT_EQ_STR(text, "http: http://u@[::1]:3128 (from http_proxy); "
                        "https: unusable (from ALL_PROXY): SOCKS proxies (socks5://) are not "
                        "supported: give an HTTP proxy, http://host:port; "
                        "ws: http://u@[::1]:3128 (from http_proxy); "
                        "wss: unusable (from ALL_PROXY): SOCKS proxies (socks5://) are not "
                        "supported: give an HTTP proxy, http://host:port; "
                        "mqtt: unusable (from ALL_PROXY): SOCKS proxies (socks5://) are not "
                        "supported: give an HTTP proxy, http://host:port; "
                        "mqtts: unusable (from ALL_PROXY): SOCKS proxies (socks5://) are not "
                        "supported: give an HTTP proxy, http://host:port; "
                        "not for: localhost,.internal (from no_proxy)");
    proxy_refusal(&c.slot[PROXY_HTTP], 403, "2001:db8::1", 8883, text, sizeof text);
    ASSERT_EQ_STR(text, "proxy http://u@[::1]:3128 (from http_proxy) refused CONNECT to "
                        "[2001:db8::1]:8883: HTTP 403");
    proxy_config_clear(&c);
    clear_env();
    config(&c, "p.example:3128", NULL);
    proxy_refusal(&c.slot[PROXY_MQTTS], 407, "b.example", 8883, text, sizeof text);
    ASSERT_TRUE(strstr(text, "proxy http://p.example:3128 (from --proxy) asks for credentials "
                             "(407) for b.example:8883") == text);
    proxy_config_describe(&c, text, 20); /* cut short, still a string */
    ASSERT_EQ_INT(strlen(text), 19);
    proxy_config_clear(&c);
    proxy_config_clear(&c); /* twice is harmless */
}

/* ---- the wire ---- */

static void parse_url(const char *text, struct wm_url *u)
{
    ASSERT_EQ_INT(url_parse(text, u), WM_OK);
}

static void test_requests(void)
{
    struct wm_url u, proxy, bare;
    char out[2048];
    parse_url("http://o:opw@origin.example:8080/a b/c.txt#frag", &u);
    parse_url("http://alice:s3cr:t@proxy.example:3128", &proxy);
    parse_url("http://proxy.example:3128", &bare);
    size_t len = http_wire_proxy_request(&u, &proxy, out, sizeof out);
    ASSERT_EQ_STR(out, "GET http://origin.example:8080/a%20b/c.txt HTTP/1.1\r\n"
                       "Host: origin.example:8080\r\n"
                       "User-Agent: " WMESH_USER_AGENT "\r\nAccept: */*\r\n"
                       "Authorization: Basic bzpvcHc=\r\n"
                       "Proxy-Authorization: Basic YWxpY2U6czNjcjp0\r\n\r\n");
    ASSERT_EQ_INT(len, strlen(out));
    url_clear(&u);
    parse_url("http://[::1]/x", &u);
    http_wire_proxy_request(&u, &bare, out, sizeof out);
    ASSERT_EQ_STR(out, "GET http://[::1]/x HTTP/1.1\r\nHost: [::1]\r\n"
                       "User-Agent: " WMESH_USER_AGENT "\r\nAccept: */*\r\n\r\n");
    /* Too small: the length needed, as for http_wire_request(). */
    char small[16];
    size_t need = http_wire_proxy_request(&u, &bare, small, sizeof small);
    ASSERT_EQ_INT(need, strlen(out));
    ASSERT_EQ_INT(http_wire_proxy_request(&u, NULL, out, sizeof out), 0);
    url_clear(&u);
    parse_url("https://origin.example/x", &u);
    ASSERT_EQ_INT(http_wire_proxy_request(&u, &bare, out, sizeof out), 0); /* CONNECT instead */
    url_clear(&u);

    len = http_wire_connect_request("origin.example", 443, &proxy, out, sizeof out);
    ASSERT_EQ_STR(out, "CONNECT origin.example:443 HTTP/1.1\r\nHost: origin.example:443\r\n"
                       "User-Agent: " WMESH_USER_AGENT "\r\n"
                       "Proxy-Authorization: Basic YWxpY2U6czNjcjp0\r\n\r\n");
    ASSERT_EQ_INT(len, strlen(out));
    http_wire_connect_request("2001:db8::1", 8883, NULL, out, sizeof out);
    ASSERT_EQ_STR(out, "CONNECT [2001:db8::1]:8883 HTTP/1.1\r\nHost: [2001:db8::1]:8883\r\n"
                       "User-Agent: " WMESH_USER_AGENT "\r\n\r\n");
    http_wire_connect_request("h", 80, &bare, out, sizeof out);
    ASSERT_EQ_STR(out, "CONNECT h:80 HTTP/1.1\r\nHost: h:80\r\nUser-Agent: " WMESH_USER_AGENT
                       "\r\n\r\n");
    need = http_wire_connect_request("h", 80, &bare, small, sizeof small);
    ASSERT_EQ_INT(need, strlen(out));
    ASSERT_EQ_INT(http_wire_connect_request("h", 80, &bare, out, need), need);
    ASSERT_EQ_INT(http_wire_connect_request("h", 80, &bare, out, need + 1), need);
    ASSERT_EQ_STR(out, "CONNECT h:80 HTTP/1.1\r\nHost: h:80\r\nUser-Agent: " WMESH_USER_AGENT
                       "\r\n\r\n");
    const char *bad_hosts[] = {"", "a b", "a\r\nX: y", "a/b", "a@b", "[::1]", "a#", NULL};
    for (size_t i = 0; i < sizeof bad_hosts / sizeof bad_hosts[0]; i++)
        ASSERT_EQ_INT(http_wire_connect_request(bad_hosts[i], 443, NULL, out, sizeof out), 0);
    ASSERT_EQ_INT(http_wire_connect_request("h", 0, NULL, out, sizeof out), 0);
    ASSERT_EQ_INT(http_wire_connect_request("h", 65536, NULL, out, sizeof out), 0);
    url_clear(&proxy);
    url_clear(&bare);
}

/* What feeding one answer to CONNECT gave. */
struct answer {
    enum http_wire_tunnel result; /* MORE when the input ran out first */
    int status;
    size_t after; /* bytes after the head (UP, REFUSED), the unfed ones included */
    const char *why;
};

/* Feeds text in pieces: the first of first bytes, then piece bytes each; each buffer holds the
 * unconsumed rest of the previous one first, as a caller keeps it. */
static struct answer feed(const char *text, size_t first, size_t piece)
{
    static char buf[HTTP_WIRE_MAX_HEAD + 64];
    struct answer a = {HTTP_WIRE_TUNNEL_MORE, 0, 0, NULL};
    struct http_response r;
    http_wire_begin_connect(&r);
    size_t len = strlen(text), off = 0, have = 0;
    while (off < len) {
        size_t n = off == 0 ? first : piece;
        if (n > len - off) n = len - off;
        memcpy(buf + have, text + off, n);
        have += n;
        off += n;
        size_t used = 0;
        a.result = http_wire_tunnel_parse(&r, buf, have, &used);
        if (used > have) TEST_FAIL_AT("used %zu of %zu", used, have);
        if (a.result != HTTP_WIRE_TUNNEL_MORE) {
            a.status = r.status;
            if (a.result != HTTP_WIRE_TUNNEL_ERROR) a.after = have - used + (len - off);
            a.why = r.why;
            return a;
        }
        memmove(buf, buf + used, have - used);
        have -= used;
    }
    return a;
}

/* Every way of cutting text gives the same answer, and that is want_result etc. */
static void answer_is(const char *text, enum http_wire_tunnel want_result, int want_status,
                      size_t want_after)
{
    size_t len = strlen(text);
    struct answer whole = feed(text, len, len);
    if (whole.result != want_result || whole.status != want_status || whole.after != want_after)
        TEST_FAIL_AT("%.40s...: result %d status %d after %zu; expected %d %d %zu (why: %s)", text,
                     whole.result, whole.status, whole.after, want_result, want_status, want_after,
                     whole.why ? whole.why : "");
    else
        test_passed++;
    bool same = true;
    for (size_t cut = 1; cut < len; cut++) {
        struct answer a = feed(text, cut, len), c = feed(text, cut, 1);
        if (a.result != whole.result || a.status != whole.status || a.after != whole.after ||
            c.result != whole.result || c.after != whole.after)
            same = false;
    }
    struct answer bytes = feed(text, 1, 1);
    if (bytes.result != whole.result || bytes.after != whole.after) same = false;
    if (same)
        test_passed++;
    else
        TEST_FAIL_AT("%.40s...: another outcome when cut in pieces", text);
}

static void test_answers(void)
{
    answer_is("HTTP/1.1 200 Connection established\r\n\r\n", HTTP_WIRE_TUNNEL_UP, 200, 0);
    answer_is("HTTP/1.0 200 OK\r\nProxy-Agent: squid\r\n\r\n", HTTP_WIRE_TUNNEL_UP, 200, 0);
    /* Bytes from the far end right after the head are handed back, not eaten. */
    answer_is("HTTP/1.1 200 OK\r\n\r\nSSH-2.0-x\r\n", HTTP_WIRE_TUNNEL_UP, 200, 11);
    answer_is("HTTP/1.1 200 OK\n\n\x16\x03\x01", HTTP_WIRE_TUNNEL_UP, 200, 3);
    /* Framing fields in a 2xx mean nothing: the tunnel starts after the head all the same. */
    answer_is("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\nabcdefg",
              HTTP_WIRE_TUNNEL_UP, 200, 7);
    answer_is("HTTP/1.1 204 No Content\r\n\r\n", HTTP_WIRE_TUNNEL_UP, 204, 0);
    /* 1xx heads are skipped. */
    answer_is("HTTP/1.1 100 Continue\r\nX: y\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", HTTP_WIRE_TUNNEL_UP,
              200, 0);
    /* Refusals: the status; the body is not part of the head. */
    answer_is("HTTP/1.1 407 Proxy Authentication Required\r\n"
              "Proxy-Authenticate: Basic realm=\"squid\"\r\nContent-Length: 4\r\n\r\nnope",
              HTTP_WIRE_TUNNEL_REFUSED, 407, 4);
    answer_is("HTTP/1.1 403 Forbidden\r\n\r\n", HTTP_WIRE_TUNNEL_REFUSED, 403, 0);
    answer_is("HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n", HTTP_WIRE_TUNNEL_REFUSED,
              502, 0);
    answer_is("HTTP/1.1 301 Moved\r\nLocation: http://x/\r\n\r\n", HTTP_WIRE_TUNNEL_REFUSED, 301,
              0);
    /* Incomplete heads ask for more. */
    answer_is("HTTP/1.1 200 OK\r\n", HTTP_WIRE_TUNNEL_MORE, 0, 0);
    answer_is("HTTP/1.1 200 OK\r\nX: y\r\n\r", HTTP_WIRE_TUNNEL_MORE, 0, 0);
    answer_is("HTTP/1.1 200", HTTP_WIRE_TUNNEL_MORE, 0, 0);
    /* Malformed. */
    answer_is("SSH-2.0-OpenSSH\r\n", HTTP_WIRE_TUNNEL_ERROR, 0, 0);
    answer_is("HTTP/1.1 200 OK\r\nbad field\r\n\r\n", HTTP_WIRE_TUNNEL_ERROR, 200, 0);
    answer_is("HTTP/1.1 101 Switching\r\n\r\n", HTTP_WIRE_TUNNEL_ERROR, 101, 0);
    struct answer a = feed("HTTP/1.1 20x OK\r\n\r\n", 100, 100);
    ASSERT_EQ_INT(a.result, HTTP_WIRE_TUNNEL_ERROR);
    ASSERT_EQ_STR(a.why, "malformed status line");

    /* A head over the cap is refused, never buffered without end. */
    static char big[HTTP_WIRE_MAX_HEAD + 64];
    size_t n = (size_t)snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\n");
    while (n + 100 < sizeof big - 8)
        n += (size_t)snprintf(big + n, sizeof big - n, "X-Filler: %080d\r\n", 0);
    snprintf(big + n, sizeof big - n, "\r\n");
    a = feed(big, 4096, 4096);
    ASSERT_EQ_INT(a.result, HTTP_WIRE_TUNNEL_ERROR);
    ASSERT_EQ_STR(a.why, "response head over 32 KiB");

    /* The parser on its own: NULL input is no input. */
    struct http_response r;
    size_t used = 7;
    http_wire_begin_connect(&r);
    ASSERT_EQ_INT(http_wire_tunnel_parse(&r, NULL, 0, &used), HTTP_WIRE_TUNNEL_MORE);
    ASSERT_EQ_INT(used, 0);
    /* After UP, the response is over: http_wire_parse agrees. */
    const char *up = "HTTP/1.1 200 OK\r\n\r\n";
    ASSERT_EQ_INT(http_wire_tunnel_parse(&r, up, strlen(up), &used), HTTP_WIRE_TUNNEL_UP);
    ASSERT_EQ_INT(r.framing, HTTP_WIRE_NO_BODY);
    ASSERT_TRUE(r.keep_alive);
    const char *data = NULL;
    size_t dlen = 0;
    ASSERT_EQ_INT(http_wire_parse(&r, "", 0, &used, &data, &dlen), HTTP_WIRE_END);
    /* An ordinary response is not a tunnel: the same head has a body read until close. */
    http_wire_begin(&r);
    ASSERT_EQ_INT(http_wire_parse(&r, up, strlen(up), &used, &data, &dlen), HTTP_WIRE_HEAD);
    ASSERT_EQ_INT(r.framing, HTTP_WIRE_UNTIL_CLOSE);
}

int main(void)
{
    test_variables();
    test_no_proxy_env();
    test_no_proxy_forms();
    test_url_forms();
    test_credentials();
    test_words();
    test_requests();
    test_answers();
    return TEST_REPORT();
}
