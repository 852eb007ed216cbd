/*
 * Logging for cloudapp-ticketd: structured journal entries when stderr is
 * connected to the journal, plain lines on stderr otherwise.
 */

#ifndef CLOUDAPP_LOG_H
#define CLOUDAPP_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* The ids a log entry is about; every member may be NULL. */
struct log_ids {
	const char *user;
	const char *end_user_id;
	const char *task_id;
	const char *request_id;
	const char *cloud_error; /* the API's error Code */
};

/* Chooses the journal or stderr and whether debug entries are written. */
void log_setup(bool debug);

bool log_debug_enabled(void);

/*
 * Writes one entry.  The message must never contain a ticket or a secret;
 * the ids become the journal fields USER=, END_USER_ID=, TASK_ID=,
 * REQUEST_ID= and CLOUD_ERROR=.
 */
void log_ids(int priority, const struct log_ids *ids, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...) log_ids(LOG_ERR, NULL, __VA_ARGS__)
#define log_warning(...) log_ids(LOG_WARNING, NULL, __VA_ARGS__)
#define log_notice(...) log_ids(LOG_NOTICE, NULL, __VA_ARGS__)
#define log_info(...) log_ids(LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) log_ids(LOG_DEBUG, NULL, __VA_ARGS__)

#endif
