/*
 * Logging for cloudapp-ticketd.  Under systemd, stderr is a journal stream
 * (JOURNAL_STREAM names its device and inode), and entries go to the
 * journal natively so the ids become searchable fields.  Anywhere else they
 * are printed on stderr with the ids appended.
 */

#include "config.h"

#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#define LOG_MESSAGE_MAX 2048

static bool log_to_journal;
static bool log_debug_on;

/* Parses JOURNAL_STREAM's "DEVICE:INODE", two decimal numbers. */
static bool journal_stream_parse(const char *text, unsigned long long *ret_dev,
				 unsigned long long *ret_ino)
{
	char *end;

	if (!isdigit((unsigned char)text[0]))
		return false;
	errno = 0;
	*ret_dev = strtoull(text, &end, 10);
	if (errno != 0 || *end != ':' || !isdigit((unsigned char)end[1]))
		return false;
	*ret_ino = strtoull(end + 1, &end, 10);
	return errno == 0 && *end == '\0';
}

static bool stderr_is_journal(void)
{
	const char *stream = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!stream || !journal_stream_parse(stream, &dev, &ino))
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return st.st_dev == dev && st.st_ino == ino;
}

void log_setup(bool debug)
{
	log_to_journal = stderr_is_journal();
	log_debug_on = debug;
}

bool log_debug_enabled(void)
{
	return log_debug_on;
}

/* Appends "FIELD=value" to the iovec list when value is set. */
static void add_field(struct iovec *iov, size_t *n, char *storage,
		      size_t size, const char *field, const char *value)
{
	int len;

	if (!value || !*value)
		return;
	len = snprintf(storage, size, "%s=%s", field, value);
	if (len < 0)
		return;
	iov[*n].iov_base = storage;
	iov[*n].iov_len = (size_t)len < size ? (size_t)len : size - 1;
	(*n)++;
}

static void log_journal(int priority, const struct log_ids *ids,
			const char *message)
{
	char fields[7][LOG_MESSAGE_MAX + 16];
	char prio[16];
	struct iovec iov[8];
	size_t n = 0;

	add_field(iov, &n, fields[0], sizeof(fields[0]), "MESSAGE", message);
	snprintf(prio, sizeof(prio), "PRIORITY=%d", priority);
	iov[n].iov_base = prio;
	iov[n++].iov_len = strlen(prio);
	if (ids) {
		add_field(iov, &n, fields[1], sizeof(fields[1]), "USER",
			  ids->user);
		add_field(iov, &n, fields[2], sizeof(fields[2]),
			  "END_USER_ID", ids->end_user_id);
		add_field(iov, &n, fields[3], sizeof(fields[3]), "TASK_ID",
			  ids->task_id);
		add_field(iov, &n, fields[4], sizeof(fields[4]),
			  "REQUEST_ID", ids->request_id);
		add_field(iov, &n, fields[5], sizeof(fields[5]),
			  "CLOUD_ERROR", ids->cloud_error);
	}
	sd_journal_sendv(iov, (int)n);
}

/* Appends " name=value" to line when value is set. */
static void append_id(char *line, size_t size, size_t *len, const char *name,
		      const char *value)
{
	int n;

	if (!value || *len >= size)
		return;
	n = snprintf(line + *len, size - *len, " %s=%s", name, value);
	if (n > 0)
		*len += (size_t)n;
}

/* Writes the whole line with one write(), since stderr is unbuffered and
 * a line written in pieces would cost a system call per piece and could
 * interleave with another writer's. */
static void log_stderr(const struct log_ids *ids, const char *message)
{
	char line[LOG_MESSAGE_MAX + 512];
	size_t len;
	int n;

	n = snprintf(line, sizeof(line), "cloudapp-ticketd: %s", message);
	len = n > 0 ? (size_t)n : 0;
	if (ids) {
		append_id(line, sizeof(line), &len, "user", ids->user);
		append_id(line, sizeof(line), &len, "end_user_id",
			  ids->end_user_id);
		append_id(line, sizeof(line), &len, "task_id", ids->task_id);
		append_id(line, sizeof(line), &len, "request_id",
			  ids->request_id);
		append_id(line, sizeof(line), &len, "code", ids->cloud_error);
	}
	if (len >= sizeof(line) - 1)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	if (write(STDERR_FILENO, line, len) < 0) {
		/* Nowhere left to report it. */
	}
}

void log_ids(int priority, const struct log_ids *ids, const char *format, ...)
{
	char message[LOG_MESSAGE_MAX];
	va_list ap;

	if (priority == LOG_DEBUG && !log_debug_on)
		return;

	va_start(ap, format);
	vsnprintf(message, sizeof(message), format, ap);
	va_end(ap);

	if (log_to_journal)
		log_journal(priority, ids, message);
	else
		log_stderr(ids, message);
}
