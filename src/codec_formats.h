/* codec_formats.h: the entry points of the per-format codecs (codec_array.c, codec_v03.c,
 * codec_wnm.c), which codec.c dispatches to; for the codec files only. */
#ifndef WMESH_CODEC_FORMATS_H
#define WMESH_CODEC_FORMATS_H

#include "announce.h"
#include "error.h"
#include "json.h"

/* Fill a (fresh from announce_new) from a parsed message; why explains failures. */
WM_WARN_UNUSED enum wm_err codec_array_decode(const struct wm_json *root, struct announce *a,
                                              char *why, size_t whylen);
WM_WARN_UNUSED enum wm_err codec_v03_decode(const struct wm_json *root, struct announce *a,
                                            char *why, size_t whylen);
WM_WARN_UNUSED enum wm_err codec_wnm_decode(const struct wm_json *root, struct announce *a,
                                            char *why, size_t whylen);
/* Build the JSON of a; *out is a new reference the caller frees. */
WM_WARN_UNUSED enum wm_err codec_array_encode(const struct announce *a, struct wm_json **out);
WM_WARN_UNUSED enum wm_err codec_v03_encode(const struct announce *a, struct wm_json **out);
WM_WARN_UNUSED enum wm_err codec_wnm_encode(const struct announce *a, struct wm_json **out);

#endif
