/* test_announce_file.c: relPaths of stored files, and their announcements: checksum from the
 * bytes, inline content within the limits, topic, and the step named on failure. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "announce_file.h"
#include "codec.h"
#include "test.h"
#include "tree.h"

static char root[64];

static void put(const char *rel, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_TRUE(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

static void test_relpath(void)
{
    char out[32];
    ASSERT_EQ_INT(announce_file_relpath("/srv/t", "/srv/t/a/b%c.txt", out, sizeof out), WM_OK);
    ASSERT_EQ_STR(out, "a/b%25c.txt");
    ASSERT_EQ_INT(announce_file_relpath("/srv/t/", "/srv/t/x", out, sizeof out), WM_OK);
    ASSERT_EQ_STR(out, "x");
    ASSERT_EQ_INT(announce_file_relpath("/", "/etc/hosts", out, sizeof out), WM_OK);
    ASSERT_EQ_STR(out, "etc/hosts");
    ASSERT_EQ_INT(announce_file_relpath("/srv/t", "/srv/tree/x", out, sizeof out), WM_ERR_INVAL);
    ASSERT_EQ_INT(announce_file_relpath("/srv/t", "/srv/t", out, sizeof out), WM_ERR_INVAL);
    ASSERT_EQ_INT(announce_file_relpath("/srv/t", "/srv/t/", out, sizeof out), WM_ERR_INVAL);
    ASSERT_EQ_INT(announce_file_relpath("/srv/t", "/srv/t/%%%%%%%%%%%", out, sizeof out),
                  WM_ERR_TOOBIG);
    ASSERT_EQ_STR(out, "");
}

/* Decodes what announce_file made of rel. */
static struct announce *made(struct tree *t, const char *rel, struct announce_file_options *o,
                             char *topic, enum wm_err want)
{
    char *text = NULL;
    size_t len = 0;
    const char *step = NULL;
    ASSERT_EQ_INT(announce_file(t, rel, o, &text, &len, topic, 256, &step), want);
    if (want != WM_OK) {
        ASSERT_TRUE(text == NULL);
        return NULL;
    }
    struct announce *a = NULL;
    char why[128];
    ASSERT_EQ_INT(codec_decode(text, len, &a, why, sizeof why), WM_OK);
    free(text);
    return a;
}

static void test_announce(void)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/obs", root);
    ASSERT_EQ_INT(mkdir(dir, 0755), 0);
    put("obs/small.txt", "hello");
    put("obs/big.txt", "0123456789abcdef");
    struct tree *t = tree_attach(root);
    ASSERT_TRUE(t != NULL);
    struct announce_file_options o = {.base_url = "http://h:1/",
                                      .format = WM_FORMAT_V03,
                                      .method = WM_SUM_SHA512,
                                      .inline_max = 8,
                                      .exchange = "xpublic",
                                      .topic_prefix = "v03/post",
                                      .pubtime_ns = 1700000000123456000};
    char topic[256];
    struct wm_checksum want;
    ASSERT_EQ_INT(integrity_of_buffer(WM_SUM_SHA512, "small.txt", "hello", 5, &want), WM_OK);

    struct announce *a = made(t, "obs/small.txt", &o, topic, WM_OK);
    ASSERT_EQ_STR(topic, "xpublic/v03/post/obs");
    ASSERT_EQ_STR(a->base_url, "http://h:1/");
    ASSERT_EQ_STR(a->rel_path, "obs/small.txt");
    ASSERT_EQ_INT(a->size, 5);
    ASSERT_EQ_INT(a->pubtime_ns, 1700000000123456000);
    ASSERT_TRUE(integrity_equal(&a->sum, &want));
    ASSERT_EQ_INT(a->content_len, 5); /* within --inline: carried */
    ASSERT_EQ_MEM(a->content, "hello", 5);
    announce_free(&a);

    a = made(t, "obs/big.txt", &o, topic, WM_OK); /* over --inline: announced without content */
    ASSERT_EQ_INT(a->size, 16);
    ASSERT_EQ_INT(a->content_encoding, WM_CONTENT_NONE);
    ASSERT_EQ_INT(a->sum.method, WM_SUM_SHA512);
    announce_free(&a);

    o.format = WM_FORMAT_ARRAY; /* no place for content: none, whatever inline_max says */
    o.exchange = "x";
    o.topic_prefix = NULL;
    a = made(t, "obs/small.txt", &o, topic, WM_OK);
    ASSERT_EQ_STR(topic, "x/obs");
    ASSERT_EQ_INT(a->content_encoding, WM_CONTENT_NONE);
    ASSERT_TRUE(integrity_equal(&a->sum, &want));
    announce_free(&a);

    /* Failures name their step. */
    char *text = (char *)"x";
    size_t len;
    const char *step = NULL;
    ASSERT_EQ_INT(announce_file(t, "obs/none.txt", &o, &text, &len, topic, 256, &step),
                  WM_ERR_NOTFOUND);
    ASSERT_EQ_STR(step, "checksum");
    ASSERT_TRUE(text == NULL);
    ASSERT_EQ_INT(announce_file(t, "../etc/passwd", &o, &text, &len, topic, 256, &step),
                  WM_ERR_UNSAFE);
    ASSERT_EQ_STR(step, "path");
    ASSERT_EQ_INT(announce_file(t, "obs", &o, &text, &len, topic, 256, &step), WM_ERR_NOTFOUND);
    o.exchange = "a-long-exchange";
    ASSERT_EQ_INT(announce_file(t, "obs/small.txt", &o, &text, &len, topic, 8, &step),
                  WM_ERR_TOOBIG);
    ASSERT_EQ_STR(step, "topic");
    ASSERT_TRUE(text == NULL);
    o.base_url = NULL;
    ASSERT_EQ_INT(announce_file(t, "obs/small.txt", &o, &text, &len, topic, 256, NULL),
                  WM_ERR_INVAL);
    tree_close(&t);

    char path[256];
    snprintf(path, sizeof path, "%s/obs/small.txt", root);
    unlink(path);
    snprintf(path, sizeof path, "%s/obs/big.txt", root);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/wmesh-announce-XXXXXX");
    if (!mkdtemp(root)) return 1;
    test_relpath();
    test_announce();
    rmdir(root);
    return TEST_REPORT();
}
