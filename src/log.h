#ifndef FETCHD_LOG_H
#define FETCHD_LOG_H

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Parse "error", "warn", "info" or "debug". Returns 0, or -1 on an unknown
 * name. */
int log_level_parse(const char *name, enum log_level *out);
/* "error", "warn", "info" or "debug". */
const char *log_level_name(enum log_level level);

/* Set the most verbose level that is printed. Safe from any thread. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* One line on stderr per call, with a journald priority prefix ("<3>") when
 * JOURNAL_STREAM is set, else a timestamp and level name. Thread-safe. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* Log at error level and exit(1). Start-up only. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
