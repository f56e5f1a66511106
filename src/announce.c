/* announce.c: life cycle of the format-independent announcement struct. */
#include "announce.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "text.h"

struct announce *announce_new(void)
{
    struct announce *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->size = -1;
    return a;
}

void announce_free(struct announce **a)
{
    if (!a || !*a) return;
    struct announce *x = *a;
    free(x->base_url);
    free(x->rel_path);
    free(x->retrieve_path);
    free(x->download_url);
    free(x->topic);
    free(x->global_cache);
    free(x->content);
    wm_json_free(&x->extra);
    free(x);
    *a = NULL;
}

/* strdup that treats NULL as "nothing to copy"; false only on allocation failure. */
static bool dup_opt(const char *s, char **out)
{
    *out = NULL;
    if (!s) return true;
    *out = strdup(s);
    return *out != NULL;
}

struct announce *announce_clone(const struct announce *a)
{
    if (!a) {
        errno = EINVAL;
        return NULL;
    }
    struct announce *c = announce_new();
    if (!c) return NULL;
    *c = *a;
    c->base_url = c->rel_path = c->retrieve_path = c->download_url = c->topic = c->global_cache =
        NULL;
    c->content = NULL;
    c->extra = NULL;
    if (!dup_opt(a->base_url, &c->base_url) || !dup_opt(a->rel_path, &c->rel_path) ||
        !dup_opt(a->retrieve_path, &c->retrieve_path) ||
        !dup_opt(a->download_url, &c->download_url) || !dup_opt(a->topic, &c->topic) ||
        !dup_opt(a->global_cache, &c->global_cache))
        goto fail;
    if (a->content) {
        /* One spare NUL byte, as the codecs allocate, so UTF-8 content can be used as text. */
        c->content = malloc(a->content_len + 1);
        if (!c->content) goto fail;
        memcpy(c->content, a->content, a->content_len);
        c->content[a->content_len] = '\0';
    }
    if (a->extra && !(c->extra = wm_json_copy(a->extra))) goto fail;
    return c;
fail:
    announce_free(&c);
    errno = ENOMEM;
    return NULL;
}

enum wm_err announce_set_content(struct announce *a, const char *encoding, const char *value,
                                 size_t len, const char *field, char *why, size_t whylen)
{
    if (!a || !encoding || (!value && len) || !field) return WM_ERR_INVAL;
    bool b64 = strcasecmp(encoding, "base64") == 0;
    if (!b64 && strcasecmp(encoding, "utf-8") != 0 && strcasecmp(encoding, "utf8") != 0) {
        if (why && whylen) snprintf(why, whylen, "%s.encoding must be utf-8 or base64", field);
        return WM_ERR_INVAL;
    }
    size_t cap = b64 ? len / 4 * 3 + 3 : len;
    free(a->content);
    a->content_len = 0;
    a->content_encoding = WM_CONTENT_NONE;
    if (!(a->content = malloc(cap + 1))) return WM_ERR_NOMEM;
    if (!b64) {
        if (len) memcpy(a->content, value, len);
    } else if (text_base64_decode(value, len, a->content, &cap) != WM_OK) {
        if (why && whylen) snprintf(why, whylen, "bad base64 in %s.value", field);
        return WM_ERR_INVAL;
    }
    a->content[cap] = '\0';
    a->content_len = cap;
    a->content_encoding = b64 ? WM_CONTENT_BASE64 : WM_CONTENT_UTF8;
    return WM_OK;
}
