/* log.h: one-line log records on stderr with UTC ISO 8601 timestamps. */
#ifndef WMESH_LOG_H
#define WMESH_LOG_H

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

/* Prints one line: "<timestamp> <level> [name] <message>". Thread-safe: one write(2) per line. */
void log_msg(enum wm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(WM_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(WM_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(WM_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(WM_LOG_DEBUG, __VA_ARGS__)

#endif
