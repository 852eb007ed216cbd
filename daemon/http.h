/*
 * HTTPS requests on the daemon's sd-event loop, through libcurl's multi
 * interface: every transfer runs in the one loop, none waits on another.
 */

#ifndef CLOUDAPP_HTTP_H
#define CLOUDAPP_HTTP_H

#include <stddef.h>
#include <systemd/sd-event.h>

/* Connections kept open to the endpoint, and so the most requests sent
 * at once.  With HTTP/1.1 each connection carries one request at a time;
 * with HTTP/2 they share connections. */
#define HTTP_CONNECTIONS_PER_HOST 32

/* Largest response body kept; a longer one fails the transfer. */
#define HTTP_BODY_MAX ((size_t)1024 * 1024)

struct http_client;
struct http_transfer;

struct http_response {
	int curl_code;	  /* CURLE_OK when a response arrived */
	const char *error; /* curl's message when curl_code is not CURLE_OK */
	long status;	   /* HTTP status, 0 without a response */
	const char *body;  /* NUL-terminated; may be empty */
	size_t body_len;
	const char *date;  /* the Date header, or NULL */
	/* x-ratelimit-user-api, else x-ratelimit-user, or NULL */
	const char *rate_limit;
};

/* Called once per transfer; response and its strings die after it returns. */
typedef void (*http_done_fn)(const struct http_response *response,
			     void *userdata);

struct http_request {
	const char *url;
	const char *const *headers; /* "Name: value" lines, NULL-terminated */
	const char *body;
	size_t body_len;
	long timeout_ms;
};

/*
 * Creates the client and loads the trusted CAs once: the system's default
 * store plus ca_file (PEM) when it is not NULL.  Loads libcurl first when
 * no client was made before (curl_dl_load()).  On failure *ret_error
 * contains the reason.
 */
int http_client_new(sd_event *event, const char *ca_file,
		    struct http_client **ret_client, char **ret_error);

/*
 * Loads the trusted CAs as http_client_new() does, then frees them, to
 * check ca_file without libcurl.  On failure *ret_error contains the
 * reason.
 */
int http_check_trust(const char *ca_file, char **ret_error);

/*
 * Replaces the trusted CAs for new connections, as http_client_new()
 * loads them.  Connections already open keep theirs.
 */
int http_client_set_ca_file(struct http_client *client, const char *ca_file,
			    char **ret_error);

/* Cancels every transfer without calling its callback, then frees. */
void http_client_free(struct http_client *client);

/*
 * Starts a POST.  The request is copied, so it may go away after this
 * returns.  done runs from the event loop, never from inside this call.
 */
int http_client_post(struct http_client *client,
		     const struct http_request *request, http_done_fn done,
		     void *userdata, struct http_transfer **ret_transfer);

/* Stops a transfer; its callback is not called. */
void http_transfer_cancel(struct http_transfer *transfer);

#endif
