/* test_prom_text.c: sample lines, labels (quoted commas and braces, escapes), comments, sums. */
#include <math.h>

#include "prom_text.h"
#include "test.h"

static const char body[] = "# HELP wmesh_downloads_total Files downloaded.\n"
                           "# TYPE wmesh_downloads_total counter\n"
                           "wmesh_downloads_total 42\n"
                           "wmesh_broker_connected{broker=\"owner@127.0.0.1:1883\"} 1\n"
                           "wmesh_broker_connected{broker=\"b,{x}\\\"y\\\\\"} 0\n"
                           "wmesh_rejected_total{reason=\"lag\",broker=\"a\"} 3 1700000000000\n"
                           "wmesh_rejected_total{reason=\"filter\"} 4.5\n"
                           "wmesh_rejected_total_other 100\n"
                           "   \n"
                           "not a sample\n"
                           "wmesh_lag_seconds_sum +Inf\n"
                           "wmesh_queue_depth 7"; /* no final newline */

static void test_next(void)
{
    struct prom_sample s;
    const char *p = body;
    ASSERT_TRUE(prom_next(&p, &s));
    ASSERT_TRUE(prom_match(&s, "wmesh_downloads_total", NULL));
    ASSERT_EQ_INT(s.labels_len, 0);
    ASSERT_TRUE(s.value == 42);
    ASSERT_TRUE(prom_next(&p, &s));
    char out[64];
    ASSERT_TRUE(prom_label(&s, "broker", out, sizeof out));
    ASSERT_EQ_STR(out, "owner@127.0.0.1:1883");
    ASSERT_TRUE(prom_next(&p, &s));
    ASSERT_TRUE(prom_label(&s, "broker", out, sizeof out));
    ASSERT_EQ_STR(out, "b,{x}\"y\\");
    ASSERT_TRUE(s.value == 0);
    ASSERT_TRUE(!prom_label(&s, "reason", out, sizeof out));
    ASSERT_TRUE(prom_next(&p, &s)); /* a timestamp after the value */
    ASSERT_TRUE(s.value == 3);
    ASSERT_TRUE(prom_label(&s, "broker", out, 2)); /* truncated */
    ASSERT_EQ_STR(out, "a");
    int n = 0;
    while (prom_next(&p, &s))
        n++;
    ASSERT_EQ_INT(n, 4); /* blank, comment and "not a sample" lines skipped */
    ASSERT_TRUE(isinf(s.value) == 0 && s.value == 7);
    ASSERT_TRUE(!prom_next(&p, &s));
}

static void test_sum(void)
{
    size_t n;
    ASSERT_TRUE(prom_sum(body, "wmesh_rejected_total", NULL, &n) == 7.5);
    ASSERT_EQ_INT(n, 2);
    ASSERT_TRUE(prom_sum(body, "wmesh_rejected_total", "reason=\"lag\"", &n) == 3);
    ASSERT_TRUE(prom_sum(body, "wmesh_rejected_total", "broker=\"a\"", &n) == 3);
    ASSERT_TRUE(prom_sum(body, "wmesh_rejected_total", "reason=\"la\"", &n) == 0);
    ASSERT_EQ_INT(n, 0);
    ASSERT_TRUE(prom_sum(body, "wmesh_broker_connected", "broker=\"owner@127.0.0.1:1883\"", NULL) ==
                1);
    ASSERT_TRUE(isinf(prom_sum(body, "wmesh_lag_seconds_sum", NULL, NULL)));
    ASSERT_TRUE(prom_sum(body, "wmesh_nothing", NULL, &n) == 0 && n == 0);
    ASSERT_TRUE(prom_sum("", "x", NULL, &n) == 0 && n == 0);
}

int main(void)
{
    test_next();
    test_sum();
    return TEST_REPORT();
}
