/* test_announce.c: an announcement's inline content, as both codecs decode it. */
#include <stdlib.h>

#include "announce.h"
#include "test.h"

int main(void)
{
    struct announce *a = announce_new();
    ASSERT_TRUE(a != NULL);
    if (!a) return TEST_REPORT();
    char why[128] = "";
    ASSERT_EQ_INT(announce_set_content(a, "UTF-8", "héllo", 6, "content", why, sizeof why), WM_OK);
    ASSERT_EQ_INT(a->content_len, 6);
    ASSERT_EQ_INT(a->content_encoding, WM_CONTENT_UTF8);
    ASSERT_EQ_STR((char *)a->content, "héllo");
    ASSERT_EQ_INT(announce_set_content(a, "base64", "aGk=", 4, "content", why, sizeof why), WM_OK);
    ASSERT_EQ_INT(a->content_len, 2);
    ASSERT_EQ_INT(a->content_encoding, WM_CONTENT_BASE64);
    ASSERT_EQ_STR((char *)a->content, "hi"); /* with its spare NUL */
    ASSERT_EQ_INT(announce_set_content(a, "utf8", "", 0, "content", why, sizeof why), WM_OK);
    ASSERT_EQ_INT(a->content_len, 0);
    ASSERT_EQ_STR((char *)a->content, "");
    ASSERT_EQ_INT(announce_set_content(a, "gzip", "x", 1, "properties.content", why, sizeof why),
                  WM_ERR_INVAL);
    ASSERT_EQ_STR(why, "properties.content.encoding must be utf-8 or base64");
    ASSERT_EQ_INT(announce_set_content(a, "base64", "a*==", 4, "content", why, sizeof why),
                  WM_ERR_INVAL);
    ASSERT_EQ_STR(why, "bad base64 in content.value");
    ASSERT_EQ_INT(a->content_encoding, WM_CONTENT_NONE);
    ASSERT_EQ_INT(announce_set_content(a, "base64", "aGk=", 4, "content", NULL, 0), WM_OK);
    ASSERT_EQ_INT(announce_set_content(NULL, "base64", "aGk=", 4, "content", NULL, 0),
                  WM_ERR_INVAL);
    announce_free(&a);
    ASSERT_TRUE(a == NULL);
    return TEST_REPORT();
}
