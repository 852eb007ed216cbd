/*
 * A preload library for test_daemon.sh: dlopen() of a library whose name
 * starts with "libcurl" fails as it does when libcurl is not installed,
 * with the loader's own error message.  Other names go to the real
 * dlopen().
 */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>

void *dlopen(const char *file, int mode)
{
	static void *(*real_dlopen)(const char *, int);

	if (!real_dlopen)
		real_dlopen = (void *(*)(const char *, int))dlsym(RTLD_NEXT,
								  "dlopen");
	if (!real_dlopen)
		return NULL;
	if (file && strncmp(file, "libcurl", strlen("libcurl")) == 0)
		return real_dlopen("libcurl-not-installed.so.4", mode);
	return real_dlopen(file, mode);
}
