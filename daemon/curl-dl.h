/*
 * libcurl, loaded with dlopen() when the daemon first sends a request.
 * Linked, libcurl and the libraries it depends on (GnuTLS, Kerberos, LDAP,
 * SSH and more) cost about 4 MiB of resident memory from the start.  A
 * test program that only links them grew from 3.9 to 8.0 MiB on Debian 12
 * with curl 7.88.1.  The daemon often replies only to status calls before
 * it exits idle.
 *
 * The daemon calls libcurl only through the sym_curl_* pointers below,
 * which are valid once curl_dl_load() has succeeded.
 *
 * NOTE: calls through these pointers miss the argument type checks that
 * curl's headers give curl_easy_setopt() and friends under gcc, so a
 * long option needs a long argument, as in (long)value or 1L.
 */

#ifndef CLOUDAPP_CURL_DL_H
#define CLOUDAPP_CURL_DL_H

#include <stdbool.h>

#include <curl/curl.h>

extern __typeof__(curl_easy_cleanup) *sym_curl_easy_cleanup;
extern __typeof__(curl_easy_getinfo) *sym_curl_easy_getinfo;
extern __typeof__(curl_easy_init) *sym_curl_easy_init;
extern __typeof__(curl_easy_setopt) *sym_curl_easy_setopt;
extern __typeof__(curl_easy_strerror) *sym_curl_easy_strerror;
extern __typeof__(curl_global_cleanup) *sym_curl_global_cleanup;
extern __typeof__(curl_global_init) *sym_curl_global_init;
extern __typeof__(curl_multi_add_handle) *sym_curl_multi_add_handle;
extern __typeof__(curl_multi_assign) *sym_curl_multi_assign;
extern __typeof__(curl_multi_cleanup) *sym_curl_multi_cleanup;
extern __typeof__(curl_multi_info_read) *sym_curl_multi_info_read;
extern __typeof__(curl_multi_init) *sym_curl_multi_init;
extern __typeof__(curl_multi_remove_handle) *sym_curl_multi_remove_handle;
extern __typeof__(curl_multi_setopt) *sym_curl_multi_setopt;
extern __typeof__(curl_multi_socket_action) *sym_curl_multi_socket_action;
extern __typeof__(curl_share_cleanup) *sym_curl_share_cleanup;
extern __typeof__(curl_share_init) *sym_curl_share_init;
extern __typeof__(curl_share_setopt) *sym_curl_share_setopt;
extern __typeof__(curl_slist_append) *sym_curl_slist_append;
extern __typeof__(curl_slist_free_all) *sym_curl_slist_free_all;

/*
 * Loads libcurl (LIBCURL_SONAME from configure), resolves every sym_curl_*
 * pointer and calls curl_global_init().  Does nothing once that has
 * succeeded.  A failure is tried again at the next call, and *ret_error
 * then contains the reason and what to install.
 */
int curl_dl_load(char **ret_error);

bool curl_dl_is_loaded(void);

/* Calls curl_global_cleanup() when libcurl was loaded.  The library stays
 * mapped, and curl_dl_load() may initialize it again. */
void curl_dl_cleanup(void);

#endif
