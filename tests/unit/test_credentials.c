/* test_credentials.c: the credentials file: matching, permissions and bad lines. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "credentials.h"
#include "test.h"

static char path[64];

static void write_file(const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

int main(void)
{
    snprintf(path, sizeof path, "/tmp/wmesh-cred-XXXXXX");
    int fd = mkstemp(path);
    close(fd);
    char why[256];
    enum wm_err e;

    write_file("# brokers\n\nmqtt://guest:s3cret@127.0.0.1:1883/\n"
               "mqtt://owner:own%40pw@127.0.0.1:1883\nhttps://dl:x@example.org/\n",
               0600);
    struct credentials *c = credentials_load(path, &e, why, sizeof why);
    ASSERT_TRUE(c != NULL);
    char *u = credentials_apply(c, "mqtt://owner@127.0.0.1:1883");
    ASSERT_EQ_STR(u, "mqtt://owner:own%40pw@127.0.0.1:1883");
    free(u);
    u = credentials_apply(c, "mqtt://guest@127.0.0.1"); /* default port 1883 */
    ASSERT_EQ_STR(u, "mqtt://guest:s3cret@127.0.0.1:1883/");
    free(u);
    u = credentials_apply(c, "mqtt://guest:given@127.0.0.1:1883"); /* own password wins */
    ASSERT_EQ_STR(u, "mqtt://guest:given@127.0.0.1:1883");
    free(u);
    u = credentials_apply(c, "mqtt://nobody@127.0.0.1:1883");
    ASSERT_EQ_STR(u, "mqtt://nobody@127.0.0.1:1883");
    free(u);
    u = credentials_apply(c, "mqtt://guest@127.0.0.1:1884"); /* another port */
    ASSERT_EQ_STR(u, "mqtt://guest@127.0.0.1:1884");
    free(u);
    credentials_free(&c);
    ASSERT_TRUE(c == NULL);

    write_file("mqtt://guest:s3cret@127.0.0.1:1883\n", 0644);
    ASSERT_TRUE(credentials_load(path, &e, why, sizeof why) == NULL);
    ASSERT_EQ_INT(e, WM_ERR_UNSAFE);
    ASSERT_TRUE(strstr(why, "chmod 600") != NULL);

    write_file("mqtt://guest:s3cret@127.0.0.1:1883\nnot a url\n", 0600);
    ASSERT_TRUE(credentials_load(path, &e, why, sizeof why) == NULL);
    ASSERT_EQ_INT(e, WM_ERR_INVAL);
    ASSERT_TRUE(strstr(why, ":2:") != NULL);
    ASSERT_TRUE(strstr(why, "s3cret") == NULL);

    unlink(path);
    ASSERT_TRUE(credentials_load(path, &e, why, sizeof why) == NULL);
    ASSERT_EQ_INT(e, WM_ERR_NOTFOUND);
    return TEST_REPORT();
}
