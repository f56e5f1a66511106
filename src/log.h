/* log.h: one-line log records on stderr with UTC ISO 8601 timestamps.
 *
 * Records go out in whole lines, never more than PIPE_BUF bytes per write(2), so that lines of
 * several processes sharing stderr never interleave. A thread that runs an event loop batches
 * its info and debug lines (loop_run turns batching on, and calls log_flush() before each wait
 * for events): one write per loop turn, or per 4 KiB of lines, instead of one per line.
 * Warnings and errors are written at once, with the lines waiting before them; so are the lines
 * of every other thread. A clean exit flushes (atexit); a process killed outright (SIGKILL, a
 * crash) loses the info and debug lines of its last loop turn at most. */
#ifndef WMESH_LOG_H
#define WMESH_LOG_H

#include <stdbool.h>

enum wm_log_level { WM_LOG_ERROR = 0, WM_LOG_WARN, WM_LOG_INFO, WM_LOG_DEBUG };

/* Sets the most verbose level that is printed (default WM_LOG_INFO). */
void log_set_level(enum wm_log_level level);
enum wm_log_level log_get_level(void);

enum wm_log_format { WM_LOG_TEXT = 0, WM_LOG_JSON };
/* Text (default): "<time> <level> [name] <message>"; JSON: one object a line with the keys
 * time, level, name (when set) and msg, for log shippers. */
void log_set_format(enum wm_log_format format);

/* Sets a short name printed on every line (e.g. the peer's name); copied. NULL clears it. */
void log_set_name(const char *name);

/* Prints one line: "<timestamp> <level> [name] <message>". Thread-safe. */
void log_msg(enum wm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whether the calling thread's info and debug lines wait for log_flush() (default: no, each
 * line is written at once). Turning it off flushes. For the thread of an event loop. */
void log_batch(bool on);
/* Writes the lines waiting, from any thread. Thread-safe; cheap when nothing waits. */
void log_flush(void);

#define log_error(...) log_msg(WM_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(WM_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(WM_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(WM_LOG_DEBUG, __VA_ARGS__)

#endif
