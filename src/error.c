/* error.c: messages for the wmesh error enum. */
#include "error.h"

const char *wm_strerror(enum wm_err err)
{
    switch (err) {
    case WM_OK:
        return "success";
    case WM_ERR_INVAL:
        return "invalid argument or input";
    case WM_ERR_NOMEM:
        return "out of memory";
    case WM_ERR_IO:
        return "input/output error";
    case WM_ERR_NOTFOUND:
        return "not found";
    case WM_ERR_TOOBIG:
        return "over the size limit";
    case WM_ERR_FORMAT:
        return "unknown message format";
    case WM_ERR_UNSAFE:
        return "unsafe path";
    case WM_ERR_CHECKSUM:
        return "checksum mismatch";
    case WM_ERR_METHOD:
        return "unknown checksum method";
    case WM_ERR_PROTOCOL:
        return "protocol error";
    case WM_ERR_CONN:
        return "connection failed";
    case WM_ERR_AUTH:
        return "not authorised";
    case WM_ERR_NOSUM:
        return "checksum not cached";
    case WM_ERR_EXISTS:
        return "already exists";
    case WM_ERR_LIB:
        return "library error";
    case WM_ERR_NOTSUP:
        return "not supported";
    }
    return "unknown error";
}
