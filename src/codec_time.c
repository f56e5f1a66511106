/* codec_time.c: pubTime (compact) and RFC 3339 times to and from nanoseconds since the epoch. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "codec.h"

#define NS_PER_S 1000000000LL
#define YEAR_MIN 1970
#define YEAR_MAX 2261 /* int64 nanoseconds since the epoch run out in April 2262 */

/* Reads exactly n decimal digits at *p into *v and advances *p. */
static bool take_digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') return false;
        x = x * 10 + (c - '0');
    }
    *p += n;
    *v = x;
    return true;
}

/* Skips the separator c at *p; false when *p holds something else. */
static bool take_sep(const char **p, char c)
{
    if (**p != c) return false;
    (*p)++;
    return true;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (y >= 1970). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = y / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil, for days >= 0: the same 400-year eras, with years starting
 * on March 1st so that the leap day falls last. */
static void civil_from_days(int64_t days, int *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* A broken-down UTC time (1970-2261, no leap second) to seconds since the epoch. */
struct civil {
    int y, mo, d, h, mi, s;
};

static bool civil_seconds(const struct civil *c, int64_t *secs)
{
    if (c->y < YEAR_MIN || c->y > YEAR_MAX || c->mo < 1 || c->mo > 12 || c->d < 1 ||
        c->d > days_in_month(c->y, c->mo) || c->h > 23 || c->mi > 59 || c->s > 59)
        return false;
    *secs = days_from_civil(c->y, c->mo, c->d) * 86400 + c->h * 3600 + c->mi * 60 + c->s;
    return true;
}

/* The fraction after '.', keeping at most 9 digits; *p ends on the first non-digit. */
static void take_fraction(const char **p, int64_t *ns, int *digits)
{
    int64_t frac = 0;
    int n = 0;
    for (; **p >= '0' && **p <= '9'; (*p)++) {
        if (n == 9) continue; /* beyond nanoseconds: truncated */
        frac = frac * 10 + (**p - '0');
        n++;
    }
    *digits = n;
    for (int k = n; k < 9; k++)
        frac *= 10;
    *ns = frac;
}

enum wm_err codec_pubtime_parse(const char *text, int64_t *ns, int *digits)
{
    if (!text || !ns) return WM_ERR_INVAL;
    const char *p = text;
    struct civil c;
    if (!take_digits(&p, 4, &c.y) || !take_digits(&p, 2, &c.mo) || !take_digits(&p, 2, &c.d))
        return WM_ERR_INVAL;
    if (*p == 'T' || *p == 't') p++;
    if (!take_digits(&p, 2, &c.h) || !take_digits(&p, 2, &c.mi) || !take_digits(&p, 2, &c.s))
        return WM_ERR_INVAL;
    int64_t frac = 0;
    int nd = 0;
    if (*p == '.') {
        p++;
        take_fraction(&p, &frac, &nd);
    }
    if (*p == 'Z' || *p == 'z') p++;
    int64_t secs;
    if (*p || !civil_seconds(&c, &secs)) return WM_ERR_INVAL;
    *ns = secs * NS_PER_S + frac;
    if (digits) *digits = nd;
    return WM_OK;
}

/* The "Z" or "+HH:MM" / "-HH:MM" ending an RFC 3339 time, as signed minutes east of UTC. */
static bool take_offset(const char **p, int *minutes)
{
    if (**p == 'Z' || **p == 'z') {
        (*p)++;
        *minutes = 0;
        return true;
    }
    if (**p != '+' && **p != '-') return false;
    int sign = **p == '-' ? -1 : 1, h, m;
    (*p)++;
    if (!take_digits(p, 2, &h) || !take_sep(p, ':') || !take_digits(p, 2, &m) || h > 23 || m > 59)
        return false;
    *minutes = sign * (h * 60 + m);
    return true;
}

enum wm_err codec_rfc3339_parse(const char *text, int64_t *ns, int *digits, int *offset_min)
{
    if (!text || !ns) return WM_ERR_INVAL;
    const char *p = text;
    struct civil c;
    if (!take_digits(&p, 4, &c.y) || !take_sep(&p, '-') || !take_digits(&p, 2, &c.mo) ||
        !take_sep(&p, '-') || !take_digits(&p, 2, &c.d))
        return WM_ERR_INVAL;
    if (!take_sep(&p, 'T') && !take_sep(&p, 't')) return WM_ERR_INVAL;
    if (!take_digits(&p, 2, &c.h) || !take_sep(&p, ':') || !take_digits(&p, 2, &c.mi) ||
        !take_sep(&p, ':') || !take_digits(&p, 2, &c.s))
        return WM_ERR_INVAL;
    int64_t frac = 0, secs;
    int nd = 0, offset = 0;
    if (take_sep(&p, '.')) {
        if (*p < '0' || *p > '9') return WM_ERR_INVAL; /* RFC 3339 wants a digit after '.' */
        take_fraction(&p, &frac, &nd);
    }
    if (!take_offset(&p, &offset) || *p || !civil_seconds(&c, &secs)) return WM_ERR_INVAL;
    secs -= (int64_t)offset * 60;
    /* The offset may move a time just inside the range out of it. */
    if (secs < 0 || secs >= days_from_civil(YEAR_MAX + 1, 1, 1) * 86400) return WM_ERR_INVAL;
    *ns = secs * NS_PER_S + frac;
    if (digits) *digits = nd;
    if (offset_min) *offset_min = offset;
    return WM_OK;
}

enum time_style { STYLE_COMPACT, STYLE_COMPACT_T, STYLE_RFC3339 };

/* Writes v as exactly width decimal digits (v < 10^width) and returns the end. */
static char *put_digits(char *p, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/* ns as text in style with `digits` fraction digits (truncated, as they were on input). Written
 * by hand: two of these per relayed file cost 3 600 instructions through gmtime_r and snprintf. */
static enum wm_err format_time(int64_t ns, int digits, enum time_style style, char *out,
                               size_t outlen)
{
    if (!out || outlen == 0 || ns < 0 || digits < 0 || digits > 9) return WM_ERR_INVAL;
    int64_t days = ns / NS_PER_S / 86400, secs = ns / NS_PER_S % 86400;
    unsigned frac = (unsigned)(ns % NS_PER_S);
    int y, mo, d;
    civil_from_days(days, &y, &mo, &d);
    if (y > 9999) return WM_ERR_INVAL;
    char text[40], *p = text;
    bool rfc = style == STYLE_RFC3339;
    p = put_digits(p, (unsigned)y, 4);
    if (rfc) *p++ = '-';
    p = put_digits(p, (unsigned)mo, 2);
    if (rfc) *p++ = '-';
    p = put_digits(p, (unsigned)d, 2);
    if (style != STYLE_COMPACT) *p++ = 'T';
    p = put_digits(p, (unsigned)(secs / 3600), 2);
    if (rfc) *p++ = ':';
    p = put_digits(p, (unsigned)(secs / 60 % 60), 2);
    if (rfc) *p++ = ':';
    p = put_digits(p, (unsigned)(secs % 60), 2);
    if (digits > 0) {
        for (int k = digits; k < 9; k++)
            frac /= 10;
        *p++ = '.';
        p = put_digits(p, frac, digits);
    }
    if (rfc) *p++ = 'Z';
    size_t used = (size_t)(p - text);
    if (used >= outlen) return WM_ERR_TOOBIG;
    memcpy(out, text, used);
    out[used] = '\0';
    return WM_OK;
}

enum wm_err codec_pubtime_format(int64_t ns, int digits, bool with_t, char *out, size_t outlen)
{
    return format_time(ns, digits, with_t ? STYLE_COMPACT_T : STYLE_COMPACT, out, outlen);
}

enum wm_err codec_rfc3339_format(int64_t ns, int digits, char *out, size_t outlen)
{
    return format_time(ns, digits, STYLE_RFC3339, out, outlen);
}
