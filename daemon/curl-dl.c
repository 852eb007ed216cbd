/*
 * Loads libcurl on first use and resolves the functions the daemon calls,
 * so that a daemon that sends no request never maps libcurl and its
 * dependencies.  See curl-dl.h.
 */

#include "config.h"

#include "curl-dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* POSIX lets a function pointer take the void * that dlsym() returns.
 * memcpy() copies it without a cast, so the two must be of one size. */
_Static_assert(sizeof(void *) == sizeof(void (*)(void)),
	       "function and data pointers differ in size");

__typeof__(curl_easy_cleanup) *sym_curl_easy_cleanup;
__typeof__(curl_easy_getinfo) *sym_curl_easy_getinfo;
__typeof__(curl_easy_init) *sym_curl_easy_init;
__typeof__(curl_easy_setopt) *sym_curl_easy_setopt;
__typeof__(curl_easy_strerror) *sym_curl_easy_strerror;
__typeof__(curl_global_cleanup) *sym_curl_global_cleanup;
__typeof__(curl_global_init) *sym_curl_global_init;
__typeof__(curl_multi_add_handle) *sym_curl_multi_add_handle;
__typeof__(curl_multi_assign) *sym_curl_multi_assign;
__typeof__(curl_multi_cleanup) *sym_curl_multi_cleanup;
__typeof__(curl_multi_info_read) *sym_curl_multi_info_read;
__typeof__(curl_multi_init) *sym_curl_multi_init;
__typeof__(curl_multi_remove_handle) *sym_curl_multi_remove_handle;
__typeof__(curl_multi_setopt) *sym_curl_multi_setopt;
__typeof__(curl_multi_socket_action) *sym_curl_multi_socket_action;
__typeof__(curl_share_cleanup) *sym_curl_share_cleanup;
__typeof__(curl_share_init) *sym_curl_share_init;
__typeof__(curl_share_setopt) *sym_curl_share_setopt;
__typeof__(curl_slist_append) *sym_curl_slist_append;
__typeof__(curl_slist_free_all) *sym_curl_slist_free_all;

struct curl_dl_symbol {
	const char *name;
	void *pointer; /* the sym_curl_* variable that receives it */
};

#define CURL_DL_SYMBOL(name) { #name, &sym_##name }

static const struct curl_dl_symbol curl_dl_symbols[] = {
	CURL_DL_SYMBOL(curl_easy_cleanup),
	CURL_DL_SYMBOL(curl_easy_getinfo),
	CURL_DL_SYMBOL(curl_easy_init),
	CURL_DL_SYMBOL(curl_easy_setopt),
	CURL_DL_SYMBOL(curl_easy_strerror),
	CURL_DL_SYMBOL(curl_global_cleanup),
	CURL_DL_SYMBOL(curl_global_init),
	CURL_DL_SYMBOL(curl_multi_add_handle),
	CURL_DL_SYMBOL(curl_multi_assign),
	CURL_DL_SYMBOL(curl_multi_cleanup),
	CURL_DL_SYMBOL(curl_multi_info_read),
	CURL_DL_SYMBOL(curl_multi_init),
	CURL_DL_SYMBOL(curl_multi_remove_handle),
	CURL_DL_SYMBOL(curl_multi_setopt),
	CURL_DL_SYMBOL(curl_multi_socket_action),
	CURL_DL_SYMBOL(curl_share_cleanup),
	CURL_DL_SYMBOL(curl_share_init),
	CURL_DL_SYMBOL(curl_share_setopt),
	CURL_DL_SYMBOL(curl_slist_append),
	CURL_DL_SYMBOL(curl_slist_free_all),
};

#define CURL_DL_N_SYMBOLS \
	(sizeof(curl_dl_symbols) / sizeof(curl_dl_symbols[0]))

/* The fix, for the error message of a library that does not load. */
#define CURL_DL_ADVICE \
	"install libcurl4 (Debian and Ubuntu) or the package that provides " \
	LIBCURL_SONAME "; the next request loads it"

static void *curl_dl_handle; /* kept open once every function resolved */
static bool curl_dl_initialized;

/* Fills every sym_curl_* pointer from handle.  Returns the name of the
 * first missing function, or NULL. */
static const char *curl_dl_resolve(void *handle)
{
	for (size_t i = 0; i < CURL_DL_N_SYMBOLS; i++) {
		void *address = dlsym(handle, curl_dl_symbols[i].name);

		if (!address)
			return curl_dl_symbols[i].name;
		memcpy(curl_dl_symbols[i].pointer, &address, sizeof(address));
	}
	return NULL;
}

static void curl_dl_clear_symbols(void)
{
	void *null_pointer = NULL;

	for (size_t i = 0; i < CURL_DL_N_SYMBOLS; i++)
		memcpy(curl_dl_symbols[i].pointer, &null_pointer,
		       sizeof(null_pointer));
}

/* Sets *ret_error from a format, or to NULL when out of memory. */
static void curl_dl_set_error(char **ret_error, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

static void curl_dl_set_error(char **ret_error, const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	if (vasprintf(ret_error, format, ap) < 0)
		*ret_error = NULL;
	va_end(ap);
}

/* Opens the library and resolves every function, or leaves all unset. */
static int curl_dl_open(char **ret_error)
{
	const char *missing;
	void *handle;

	handle = dlopen(LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		const char *reason = dlerror();

		curl_dl_set_error(ret_error,
				  "cannot load %s (%s); " CURL_DL_ADVICE,
				  LIBCURL_SONAME,
				  reason ? reason : "unknown error");
		return -ELIBACC;
	}
	missing = curl_dl_resolve(handle);
	if (missing) {
		curl_dl_clear_symbols();
		dlclose(handle);
		curl_dl_set_error(ret_error,
				  "%s has no function %s, so it is not a "
				  "usable libcurl; " CURL_DL_ADVICE,
				  LIBCURL_SONAME, missing);
		return -ELIBBAD;
	}
	curl_dl_handle = handle;
	return 0;
}

int curl_dl_load(char **ret_error)
{
	int r;

	*ret_error = NULL;
	if (curl_dl_initialized)
		return 0;
	if (!curl_dl_handle) {
		r = curl_dl_open(ret_error);
		if (r < 0)
			return r;
	}
	if (sym_curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		curl_dl_set_error(ret_error, "cannot initialize %s",
				  LIBCURL_SONAME);
		return -EIO;
	}
	curl_dl_initialized = true;
	return 0;
}

bool curl_dl_is_loaded(void)
{
	return curl_dl_initialized;
}

void curl_dl_cleanup(void)
{
	if (!curl_dl_initialized)
		return;
	sym_curl_global_cleanup();
	curl_dl_initialized = false;
}
