/*
 * A preload library for the PAM tests: appends every syslog message to
 * the file named by CLOUDAPP_TEST_SYSLOG, one line each, so that a test
 * can read what pam_syslog() logged.  No syslog daemon runs in the test
 * environment, and libpam calls __syslog_chk() through its PLT, so this
 * definition takes its place.
 */

#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void __syslog_chk(int priority, int flag, const char *format, ...);
void syslog(int priority, const char *format, ...);

static void capture(int priority, const char *format, va_list ap)
{
	const char *path = getenv("CLOUDAPP_TEST_SYSLOG");
	FILE *file;

	if (!path || !(file = fopen(path, "ae")))
		return;
	fprintf(file, "<%d> ", priority & 7);
	vfprintf(file, format, ap);
	fputc('\n', file);
	fclose(file);
}

void __syslog_chk(int priority, int flag, const char *format, ...)
{
	va_list ap;

	(void)flag;
	va_start(ap, format);
	capture(priority, format, ap);
	va_end(ap);
}

void syslog(int priority, const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	capture(priority, format, ap);
	va_end(ap);
}
