/* ws_wire.h: the client side of WebSocket (RFC 6455) on the wire, without I/O: the opening
 * handshake, masked frames out, and a streaming decoder of server frames that turns binary
 * frames back into the byte stream MQTT over WebSockets carries. */
#ifndef WMESH_WS_WIRE_H
#define WMESH_WS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "mqtt_wire.h"

#define WS_NONCE_BYTES 16       /* random bytes behind Sec-WebSocket-Key */
#define WS_KEY_TEXT 24          /* their base64 */
#define WS_MAX_HEAD (8 * 1024)  /* the server's handshake response, status line to empty line */
#define WS_MAX_CONTROL 125      /* payload of a ping, pong or close frame (RFC 6455, 5.5) */
#define WS_MAX_FRAME_HEADER 14  /* 2 bytes, a 64-bit length, a masking key */
#define WS_DEFAULT_PATH "/mqtt" /* what mosquitto and the WIS2 Global Brokers serve */
#define WS_SUBPROTOCOL "mqtt"   /* MQTT 3.1.1 and 5 both register this name (MQTT 5, 6.0) */
#define WS_WHY_LEN 96

/* Opcodes (RFC 6455, 5.2). */
#define WS_OP_CONTINUATION 0x0
#define WS_OP_TEXT 0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE 0x8
#define WS_OP_PING 0x9
#define WS_OP_PONG 0xA

/* Close codes we send or read (RFC 6455, 7.4.1). */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_UNSUPPORTED 1003 /* a text frame: MQTT travels in binary frames only */
#define WS_CLOSE_NO_STATUS 1005   /* never sent: what a close frame without a code reads as */
#define WS_CLOSE_TOO_BIG 1009

/* ---- opening handshake ---- */

/* What the GET request carries. Strings are borrowed for the call only. */
struct ws_request {
    const char *host;       /* a name or an address; an IPv6 literal without brackets */
    int port;               /* 1 to 65535; left out of Host when it is the scheme's default */
    bool tls;               /* wss: the default port is 443, else 80 */
    const char *path;       /* NULL or "": WS_DEFAULT_PATH; else "/" and visible ASCII */
    const char *user;       /* NULL: no Authorization; else Basic with user ":" password */
    const char *password;   /* NULL: empty */
    const char *user_agent; /* NULL: no User-Agent */
    /* The caller fills these from getrandom(): a key nobody can predict is what tells the
     * server a WebSocket client speaks, not a script through a cache (RFC 6455, 10.3). */
    unsigned char nonce[WS_NONCE_BYTES];
};

/* One handshake: readied by ws_wire_request(), then fed the response. Holds no pointer and owns
 * nothing. Fields after "private" are the parser's. */
struct ws_handshake {
    char key[WS_KEY_TEXT + 1]; /* the Sec-WebSocket-Key sent */
    int status;                /* of the status line, once read; 0 before */
    /* The server named no subprotocol. Accepted: the bytes are MQTT all the same, and some
     * proxies drop the field; the caller says so in its log, since a server that agreed to
     * no subprotocol may not be a broker. A subprotocol other than "mqtt" is refused. */
    bool no_subprotocol;
    char why[WS_WHY_LEN]; /* with WS_HS_ERROR: one line for a log ("bad Sec-WebSocket-Accept") */
    /* private */
    int state;
    unsigned seen; /* fields seen and found right (ws_wire.c) */
    size_t off;    /* bytes of the head parsed so far: whole lines only */
};

enum ws_hs_result {
    WS_HS_MORE = 0, /* the head is not complete: call again when more bytes have come */
    WS_HS_DONE,     /* 101 and every field right: the WebSocket is open */
    WS_HS_ERROR,    /* refused: why says what; the connection is unusable */
};

/* Readies h and writes the request for rq into out, NUL-terminated. Returns its length; when
 * that is outlen or more, out holds nothing usable (call again with a buffer of the length +
 * 1). 0 when rq cannot be sent: no host, a port out of range, a control character, space or
 * '#' in the path or a byte outside visible ASCII, a host with characters a name or an address
 * does not have, a control character in the user agent, or credentials over 1 KiB. */
size_t ws_wire_request(struct ws_handshake *h, const struct ws_request *rq, char *out,
                       size_t outlen);

/* Reads the server's response from buf[0..len): every byte received since the request went
 * out, those of earlier calls unchanged at its start (the caller appends and calls again; each
 * line is read once). On WS_HS_DONE, *used is the length of the head: bytes after it are
 * already frames, for ws_wire_decode(). *used is 0 otherwise. Checks, in order of arrival:
 * status 101 ("HTTP 404 from the WebSocket endpoint"), Upgrade: websocket, Connection with
 * the upgrade token, Sec-WebSocket-Accept (SHA-1 of the key and the RFC's GUID), at most one
 * Sec-WebSocket-Protocol and it is "mqtt", no Sec-WebSocket-Extensions (we offered none); a
 * head over WS_MAX_HEAD bytes, a CR or NUL inside a line, or a malformed line is refused. */
enum ws_hs_result ws_wire_handshake(struct ws_handshake *h, const char *buf, size_t len,
                                    size_t *used);

/* The Sec-WebSocket-Accept value for key (NUL-terminated base64, as sent) into out (at least 29
 * bytes). WM_ERR_LIB when the digest fails. */
WM_WARN_UNUSED enum wm_err ws_wire_accept(const char *key, char *out, size_t outlen);

/* ---- frames from the client: each appends one whole frame to out, or leaves it unchanged ----
 *
 * A client masks every frame with a fresh 32-bit key (the key's bytes on the wire are its
 * big-endian bytes). Take keys from ws_wire_next_key(), seeded once from getrandom(). Errors:
 * WM_ERR_NOMEM (out unchanged), WM_ERR_INVAL for a bad argument, WM_ERR_TOOBIG as said. */

/* A masking key generator (splitmix64): cheap, and any seed will do. The caller owns it. */
struct ws_keys {
    uint64_t state;
};
uint32_t ws_wire_next_key(struct ws_keys *k);

/* One final binary frame of the n bytes at data (which must not lie inside out's storage, which
 * may move). */
WM_WARN_UNUSED enum wm_err ws_wire_binary(struct buf *out, const void *data, size_t n,
                                          uint32_t key);
/* Turns b->data[from..len) into one final binary frame in place: the bytes move up by the
 * header's size and are masked. What mqtt.c needs: note b->len, append a packet, wrap it.
 * Nothing to wrap (from == len) appends nothing; from > len is WM_ERR_INVAL. */
WM_WARN_UNUSED enum wm_err ws_wire_wrap(struct buf *b, size_t from, uint32_t key);
/* A ping or a pong (opcode WS_OP_PING or WS_OP_PONG) of up to WS_MAX_CONTROL bytes, else
 * WM_ERR_TOOBIG. Answer a ping with a pong of the same payload. */
WM_WARN_UNUSED enum wm_err ws_wire_control(struct buf *out, unsigned opcode, const void *data,
                                           size_t n, uint32_t key);
/* A close frame: code (0 for none, then no reason either; else 1000-1003, 1007-1014 or
 * 3000-4999, else WM_ERR_INVAL) and reason (NULL or up to 123 bytes, else WM_ERR_TOOBIG). */
WM_WARN_UNUSED enum wm_err ws_wire_close(struct buf *out, unsigned code, const char *reason,
                                         uint32_t key);

/* The lower level, for a caller that frames in its own way: writes the header of a final frame
 * of n payload bytes into out and returns its size (2 to WS_MAX_FRAME_HEADER). */
size_t ws_wire_header(unsigned char out[WS_MAX_FRAME_HEADER], unsigned opcode, uint64_t n,
                      uint32_t key);
/* XORs p[0..n) with key, p[0] being byte `offset` of the payload (so a payload may be masked
 * in pieces). Eight bytes at a time. Masking twice unmasks. */
void ws_wire_mask(unsigned char *p, size_t n, uint32_t key, uint64_t offset);

/* ---- frames from the server ---- */

enum ws_event {
    WS_MORE = 0, /* all of buf was consumed and nothing is to be reported: feed more */
    WS_DATA,     /* data, dlen: payload of a binary or continuation frame, pointing into buf */
    WS_PING,     /* data, dlen: the ping's payload, held by the decoder until its next call:
                  * send a pong of it */
    WS_PONG,     /* data, dlen: the pong's payload; nothing to do */
    WS_CLOSE,    /* the server closes: close_code (1005 when it gave none), data, dlen its
                  * reason (bytes as sent, not checked: escape them for a log); echo the code in
                  * a close frame, then end the connection */
    WS_ERROR,    /* the server broke the protocol: why says how; send a close frame with
                  * close_code, then end the connection */
};

/* A streaming decoder. It buffers only frame headers and control payloads (no allocation,
 * nothing to free), so it takes input split anywhere and the caller may drop every byte it has
 * fed. Fields after "private" are the decoder's. */
struct ws_decoder {
    uint64_t max_frame;   /* a data frame's payload may not be longer (ws_wire_decoder_init) */
    unsigned close_code;  /* with WS_CLOSE and WS_ERROR, as said there */
    char why[WS_WHY_LEN]; /* with WS_ERROR: "text frame: MQTT over WebSocket is binary", ... */
    /* private */
    int state;
    unsigned char head[WS_MAX_FRAME_HEADER];
    size_t head_len;
    unsigned char control[WS_MAX_CONTROL];
    size_t control_len;
    uint64_t left;   /* payload bytes of the current frame still to come */
    unsigned opcode; /* of the current frame */
    bool in_message; /* a fragmented data message has begun and not ended */
    bool final;      /* the current frame has FIN set */
};

/* Readies d. max_frame caps each data frame's payload: a stream needs no whole frame in memory,
 * but a broker that announces gigabytes is not speaking MQTT (0: no cap but the RFC's). */
void ws_wire_decoder_init(struct ws_decoder *d, uint64_t max_frame);

/* Decodes buf[0..len), the bytes that follow those fed before, and returns one event; *used is
 * how many bytes it consumed (call again with the rest until WS_MORE). Nothing is copied out of
 * buf: WS_DATA points into it, and the caller hands those bytes to the MQTT parser before it
 * reuses buf. Data never starts before the end of the data handed out earlier from the same
 * buf, so a caller may also gather it at the front of buf with memmove, frame headers dropped.
 * Binary frames and their continuations are one byte stream: frame edges mean nothing to MQTT.
 * Refused, with WS_ERROR: a masked frame, reserved bits set, an unknown opcode, a text frame, a
 * continuation with no message or a new message inside one, a control frame over 125 bytes or
 * fragmented, a data frame over max_frame, a 64-bit length with its top bit set, a close frame of
 * one byte or with a code no endpoint may send. After WS_CLOSE or WS_ERROR the decoder stays there:
 * it returns the same and consumes nothing. */
enum ws_event ws_wire_decode(struct ws_decoder *d, const unsigned char *buf, size_t len,
                             size_t *used, const unsigned char **data, size_t *dlen);

#endif
