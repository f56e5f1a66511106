/* test_series.c: series with run-time labels: made once per label values, counted and set,
 * rendered by family with escaped values, bounded by the table's capacity. */
#include <stdlib.h>

#include "../../src/series.h"
#include "test.h"

static const struct series_family downloaded = {
    "wmo_wis2_gc_downloaded_total", "Files cached.", true, {"centre_id", "report_by", NULL}};
static const struct series_family flag = {"wmo_wis2_gc_dataserver_status_flag",
                                          "Last download worked.",
                                          false,
                                          {"centre_id", "dataserver", NULL}};
static const struct series_family plain = {"wmesh_x", "No labels.", false, {NULL}};

static char *render(const struct series_table *t)
{
    struct buf out = {0};
    ASSERT_TRUE(series_render(t, &out));
    char *text = buf_detach(&out, NULL);
    buf_free(&out);
    return text;
}

int main(void)
{
    struct series_table *t = series_table_new(4);
    ASSERT_TRUE(t != NULL);
    if (!t) return TEST_REPORT();
    const char *a[] = {"ca-eccc-msc", "de-dwd-global-cache"};
    struct series *s = series_get(t, &downloaded, a);
    ASSERT_TRUE(s != NULL);
    ASSERT_TRUE(series_get(t, &downloaded, a) == s); /* the same series again */
    series_add(s, 2);
    series_add(s, 1);
    ASSERT_TRUE(series_value(s) == 3);
    const char *b[] = {"jp-jma", "host.example.org"};
    struct series *f = series_get(t, &flag, b);
    series_set(f, 1);
    const char *quoted[] = {"x\"y\\z\n", "h"};
    series_set(series_get(t, &flag, quoted), 0.5);
    series_set(series_get(t, &plain, NULL), 7);
    char *text = render(t);
    ASSERT_TRUE(text && strstr(text, "# TYPE wmo_wis2_gc_downloaded_total counter\n"
                                     "wmo_wis2_gc_downloaded_total{centre_id=\"ca-eccc-msc\","
                                     "report_by=\"de-dwd-global-cache\"} 3\n"));
    ASSERT_TRUE(text && strstr(text, "# TYPE wmo_wis2_gc_dataserver_status_flag gauge\n"
                                     "wmo_wis2_gc_dataserver_status_flag{centre_id=\"jp-jma\","
                                     "dataserver=\"host.example.org\"} 1\n"));
    ASSERT_TRUE(text && strstr(text, "centre_id=\"x\\\"y\\\\z\\n\",dataserver=\"h\"} 0.5\n"));
    ASSERT_TRUE(text && strstr(text, "\nwmesh_x 7\n"));
    free(text);
    /* Full: the fifth series is not made, and counted; a NULL series costs nothing. */
    const char *c[] = {"other", "x"};
    struct series *none = series_get(t, &downloaded, c);
    ASSERT_TRUE(none == NULL);
    series_add(none, 1);
    series_set(none, 1);
    ASSERT_EQ_INT(series_dropped(t), 1);
    /* Long values are cut, and cut values name the same series. */
    char longv[300];
    memset(longv, 'a', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    series_table_free(&t);
    t = series_table_new(2);
    const char *l1[] = {longv, "r"};
    struct series *ls = series_get(t, &downloaded, l1);
    longv[200] = 'b';
    ASSERT_TRUE(ls != NULL && series_get(t, &downloaded, l1) == ls);
    series_table_free(&t);
    ASSERT_TRUE(t == NULL);
    struct buf label = {0};
    ASSERT_EQ_INT(series_escape_label(&label, ""), WM_OK);
    ASSERT_EQ_INT(series_escape_label(&label, "plain"), WM_OK);
    ASSERT_EQ_INT(series_escape_label(&label, "\"a\\b\n"), WM_OK);
    ASSERT_EQ_INT(label.len, 5 + 8);
    ASSERT_EQ_MEM(label.data, "plain\\\"a\\\\b\\n", 13);
    buf_free(&label);
    return TEST_REPORT();
}
