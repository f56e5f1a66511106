/* credentials.c: a credentials file of URLs with passwords, matched to URLs without. */
#include "credentials.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "url.h"

struct credentials {
    char **lines; /* URLs with passwords, as written in the file */
    size_t n;
};

static bool same_endpoint(const struct wm_url *a, const struct wm_url *b)
{
    return strcmp(a->scheme, b->scheme) == 0 && strcmp(a->host, b->host) == 0 &&
           a->port == b->port && a->user && b->user && strcmp(a->user, b->user) == 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

static enum wm_err add_line(struct credentials *c, const char *text)
{
    char **l = realloc(c->lines, (c->n + 1) * sizeof *l);
    if (!l) return WM_ERR_NOMEM;
    c->lines = l;
    if (!(c->lines[c->n] = strdup(text))) return WM_ERR_NOMEM;
    c->n++;
    return WM_OK;
}

static enum wm_err read_lines(FILE *f, const char *path, struct credentials *c, char *why,
                              size_t whylen)
{
    char buf[4096];
    int lineno = 0;
    while (fgets(buf, sizeof buf, f)) {
        lineno++;
        char *line = trim(buf);
        if (!*line || *line == '#') continue;
        struct wm_url u;
        if (url_parse(line, &u) != WM_OK || !u.user || !u.password) {
            if (url_parse(line, &u) == WM_OK) url_clear(&u);
            snprintf(why, whylen, "%s:%d: not a URL with user and password", path, lineno);
            return WM_ERR_INVAL;
        }
        url_clear(&u);
        enum wm_err e = add_line(c, line);
        if (e != WM_OK) return e;
    }
    return ferror(f) ? WM_ERR_IO : WM_OK;
}

struct credentials *credentials_load(const char *path, enum wm_err *err, char *why, size_t whylen)
{
    enum wm_err e = WM_ERR_NOMEM;
    struct credentials *c = NULL;
    struct stat st;
    FILE *f = fopen(path, "re");
    if (!f) {
        e = errno == ENOENT ? WM_ERR_NOTFOUND : WM_ERR_IO;
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (fstat(fileno(f), &st) != 0 || (st.st_mode & 077)) {
        e = WM_ERR_UNSAFE;
        snprintf(why, whylen, "%s: readable by group or others; chmod 600 it", path);
        goto fail;
    }
    if (!(c = calloc(1, sizeof *c))) goto fail;
    if ((e = read_lines(f, path, c, why, whylen)) != WM_OK) goto fail;
    fclose(f);
    if (err) *err = WM_OK;
    return c;
fail:
    if (f) fclose(f);
    credentials_free(&c);
    if (err) *err = e;
    return NULL;
}

void credentials_free(struct credentials **cp)
{
    if (!cp || !*cp) return;
    for (size_t i = 0; i < (*cp)->n; i++) {
        /* Passwords should not linger in freed memory. */
        memset((*cp)->lines[i], 0, strlen((*cp)->lines[i]));
        free((*cp)->lines[i]);
    }
    free((*cp)->lines);
    free(*cp);
    *cp = NULL;
}

char *credentials_apply(const struct credentials *c, const char *url)
{
    struct wm_url want;
    if (!c || url_parse(url, &want) != WM_OK) return strdup(url);
    char *found = NULL;
    if (!want.password) {
        for (size_t i = 0; i < c->n && !found; i++) {
            struct wm_url have;
            if (url_parse(c->lines[i], &have) != WM_OK) continue;
            if (same_endpoint(&want, &have)) found = strdup(c->lines[i]);
            url_clear(&have);
        }
    }
    url_clear(&want);
    return found ? found : strdup(url);
}
