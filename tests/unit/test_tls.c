/* test_tls.c: tls_config_new's loading of CA files and client certificates, and its errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "tls.h"

/* A self-signed EC certificate and its key (made once with openssl req; expiry does not matter
 * to loading), another key, and the first key encrypted with the pass phrase "secret". */
static const char CERT[] = "-----BEGIN CERTIFICATE-----\n"
                           "MIIBmjCCAT+gAwIBAgIUCautVzwD3AZ7L80KK+wER3HaFtwwCgYIKoZIzj0EAwIw\n"
                           "ITEfMB0GA1UEAwwWd21lc2ggdW5pdCB0ZXN0IGNsaWVudDAgFw0yNjEyMDcwMjIz\n"
                           "MzJaGA8yMTI2MTExMzAyMjMzMlowITEfMB0GA1UEAwwWd21lc2ggdW5pdCB0ZXN0\n"
                           "IGNsaWVudDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABJuo3kd0KFNO+sdKwU+L\n"
                           "o+NK1VfGdW6aL7304xPQR72srMSmpjMIlvb/K2Bu8s4xS/mMUU8cLiZ6WO12MRwk\n"
                           "3Y+jUzBRMB0GA1UdDgQWBBRK9V1z8ZeVGOEA05yxWuPhGvGrKzAfBgNVHSMEGDAW\n"
                           "gBRK9V1z8ZeVGOEA05yxWuPhGvGrKzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49\n"
                           "BAMCA0kAMEYCIQD4kOtf9Ix8i54+A90F8hDOD5stBJfUcD6+GoJ8GzrC/AIhALEc\n"
                           "O/ZXyuoJYW+0Xl4itcMwA44zkH/LOsWUvXaEbTkG\n"
                           "-----END CERTIFICATE-----\n";
static const char KEY[] = "-----BEGIN PRIVATE KEY-----\n"
                          "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgM9IfOj878OFGPKT5\n"
                          "o7VptcvIQbAMvtP6IdYBed68izKhRANCAASbqN5HdChTTvrHSsFPi6PjStVXxnVu\n"
                          "mi+99OMT0Ee9rKzEpqYzCJb2/ytgbvLOMUv5jFFPHC4meljtdjEcJN2P\n"
                          "-----END PRIVATE KEY-----\n";
static const char OTHER_KEY[] = "-----BEGIN PRIVATE KEY-----\n"
                                "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgQiTR9fjzaMGaCH6A\n"
                                "Ar94jRy2EY32P/bSfT4hbw93/8uhRANCAATjmE4IuqVtm/LL7CIm0DnbkK+LpT32\n"
                                "qE5ZZIg8baSoA3Q2NMcWxgr6Klh0gUfCWe+OEXfMYI8hnyZgCW6Nj/ff\n"
                                "-----END PRIVATE KEY-----\n";
static const char ENCRYPTED_KEY[] =
    "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
    "MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAjQdG+uDyEkCQICCAAw\n"
    "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEAQIEEAzJZyMcKfYnNqYM7MZbki0EgZCf\n"
    "EjdntbCR/SFM7/dhLuN9o72MnMXyocR3FY5FPLL0fxd0AYHM9/9+ZcEMz/umKweb\n"
    "80pYYBBfIK2mxVtXMPzPB5rVXJuvrVv0Jgnsv9mo+m9Nc20bSh9eS1AR5nJNbvbL\n"
    "sohBOr+OVUUrv4U0VPrcV3eVSY9mIMR6r2tJ/pVktc+YbhGFMUvYIN00bSND9rA=\n"
    "-----END ENCRYPTED PRIVATE KEY-----\n";

static char dir[64];

/* Writes text to dir/name; returns the path (a static buffer per call slot). */
static const char *write_file(int slot, const char *name, const char *text)
{
    static char paths[8][128];
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", dir, name);
    FILE *f = fopen(paths[slot], "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return paths[slot];
}

/* tls_config_new with s: its result, and why in *why_out. */
static enum wm_err load(const struct tls_settings *s, char *why, size_t whylen)
{
    struct tls_config *cfg = NULL;
    enum wm_err e = tls_config_new(s, &cfg, why, whylen);
    ASSERT_TRUE((e == WM_OK) == (cfg != NULL));
    tls_config_free(&cfg);
    ASSERT_TRUE(cfg == NULL);
    return e;
}

static void expect_why(const char *why, const char *part)
{
    if (strstr(why, part))
        test_passed++;
    else
        TEST_FAIL_AT("\"%s\" does not hold \"%s\"", why, part);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/wmesh-tls-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    char why[600], both[4096];
    const char *cert = write_file(0, "client.pem", CERT);
    const char *key = write_file(1, "client.key", KEY);
    const char *other = write_file(2, "other.key", OTHER_KEY);
    snprintf(both, sizeof both, "%s%s", CERT, KEY);
    const char *combined = write_file(3, "both.pem", both);
    const char *garbage = write_file(4, "garbage.pem", "not a certificate\n");
    const char *encrypted = write_file(5, "encrypted.key", ENCRYPTED_KEY);
    char missing[128];
    snprintf(missing, sizeof missing, "%s/missing.pem", dir);

    /* No settings, or none set: the system's store, no client certificate. */
    ASSERT_EQ_INT(load(NULL, why, sizeof why), WM_OK);
    ASSERT_EQ_INT(load(&(struct tls_settings){0}, why, sizeof why), WM_OK);
    ASSERT_EQ_STR(why, "");

    /* A certificate and its key, apart or in one file; the certificate as CA file too. */
    ASSERT_EQ_INT(load(&(struct tls_settings){.certfile = cert, .keyfile = key}, why, sizeof why),
                  WM_OK);
    ASSERT_EQ_INT(load(&(struct tls_settings){.certfile = combined}, why, sizeof why), WM_OK);
    ASSERT_EQ_INT(load(&(struct tls_settings){cert, combined, NULL}, why, sizeof why), WM_OK);

    /* A certificate file that is not there, or not a certificate. */
    ASSERT_EQ_INT(
        load(&(struct tls_settings){.certfile = missing, .keyfile = key}, why, sizeof why),
        WM_ERR_IO);
    expect_why(why, "cannot load client certificate");
    expect_why(why, missing);
    expect_why(why, "No such file or directory");
    ASSERT_EQ_INT(
        load(&(struct tls_settings){.certfile = garbage, .keyfile = key}, why, sizeof why),
        WM_ERR_IO);
    expect_why(why, "cannot load client certificate");
    expect_why(why, garbage);

    /* A key that is not the certificate's. */
    ASSERT_EQ_INT(load(&(struct tls_settings){.certfile = cert, .keyfile = other}, why, sizeof why),
                  WM_ERR_IO);
    expect_why(why, "does not match");
    expect_why(why, other);
    expect_why(why, cert);

    /* No key: none in the certificate file, a key file that is not there, or one without a
     * pass phrase to open it (never asked for on the terminal). */
    ASSERT_EQ_INT(load(&(struct tls_settings){.certfile = cert}, why, sizeof why), WM_ERR_IO);
    expect_why(why, "holds no private key");
    expect_why(why, "give the key file");
    ASSERT_EQ_INT(
        load(&(struct tls_settings){.certfile = cert, .keyfile = missing}, why, sizeof why),
        WM_ERR_IO);
    expect_why(why, "cannot load client key");
    expect_why(why, "No such file or directory");
    ASSERT_EQ_INT(
        load(&(struct tls_settings){.certfile = cert, .keyfile = encrypted}, why, sizeof why),
        WM_ERR_IO);
    expect_why(why, "encrypted");

    /* A key without a certificate. */
    ASSERT_EQ_INT(load(&(struct tls_settings){.keyfile = key}, why, sizeof why), WM_ERR_INVAL);
    expect_why(why, "without its certificate");

    /* CA files: missing, or holding no certificate. */
    ASSERT_EQ_INT(load(&(struct tls_settings){.cafile = missing}, why, sizeof why), WM_ERR_IO);
    expect_why(why, "cannot load CA certificates from");
    expect_why(why, missing);
    ASSERT_EQ_INT(load(&(struct tls_settings){.cafile = garbage}, why, sizeof why), WM_ERR_IO);
    expect_why(why, garbage);

    /* Without a why buffer, and without out. */
    struct tls_config *cfg = NULL;
    ASSERT_EQ_INT(tls_config_new(&(struct tls_settings){.certfile = missing}, &cfg, NULL, 0),
                  WM_ERR_IO);
    ASSERT_TRUE(cfg == NULL);
    ASSERT_EQ_INT(tls_config_new(NULL, NULL, why, sizeof why), WM_ERR_INVAL);

    const char *names[] = {"client.pem", "client.key",  "other.key",
                           "both.pem",   "garbage.pem", "encrypted.key"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
    return TEST_REPORT();
}
