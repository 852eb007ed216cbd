/*
 * libcurl's multi interface driven by sd-event.  curl's socket callback
 * names the descriptors to watch and its timer callback the time to wake
 * it.  sd-event io and time sources do both, and completed transfers are
 * collected after each curl_multi_socket_action().
 */

#include "config.h"

#include "http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "curl-dl.h"
#include "log.h"
#include "util.h"

#define HTTP_CONNECT_TIMEOUT_MS 5000
#define HTTP_USER_AGENT PACKAGE_NAME "/" PACKAGE_VERSION

/* The smallest upload buffer curl accepts; its default is 64 KiB. */
#define HTTP_UPLOAD_BUFFER_SIZE 16384L

/* curl's timer drives its connect and transfer timeouts and its internal
 * steps, so it fires with 1 ms accuracy instead of sd-event's 250 ms. */
#define HTTP_TIMER_ACCURACY_USEC 1000u

struct http_client {
	sd_event *event;
	CURLM *multi;
	CURLSH *share; /* TLS sessions and DNS answers for every transfer */
	X509_STORE *trust; /* shared by every TLS connection */
	sd_event_source *timer;
	/* Runs a timeout of 0 ms on the next loop iteration.  curl requests
	 * one for every new transfer, and a time source would re-arm the
	 * loop's timerfd for it twice. */
	sd_event_source *timer_now;
	struct http_transfer *transfers; /* every transfer in flight */
};

struct http_transfer {
	struct http_client *client;
	struct http_transfer *next, *prev;
	CURL *easy;
	struct curl_slist *headers;
	char *body;
	size_t body_len;
	char *response_body;
	size_t response_len, response_cap;
	bool too_large;
	char *date;
	char *rate_limit_api, *rate_limit_user;
	http_done_fn done;
	void *userdata;
	char error[CURL_ERROR_SIZE];
};

static void transfer_free(struct http_transfer *t)
{
	struct http_client *client = t->client;

	if (t->prev)
		t->prev->next = t->next;
	else if (client->transfers == t)
		client->transfers = t->next;
	if (t->next)
		t->next->prev = t->prev;

	if (t->easy) {
		sym_curl_multi_remove_handle(client->multi, t->easy);
		sym_curl_easy_cleanup(t->easy);
	}
	sym_curl_slist_free_all(t->headers);
	free(t->body);
	/* The response contains a ticket once a task has finished. */
	OPENSSL_cleanse(t->response_body, t->response_cap);
	free(t->response_body);
	free(t->date);
	free(t->rate_limit_api);
	free(t->rate_limit_user);
	free(t);
}

static void http_collect_done(struct http_client *client)
{
	CURLMsg *msg;
	int left;

	while ((msg = sym_curl_multi_info_read(client->multi, &left))) {
		struct http_transfer *t = NULL;
		struct http_response response = { 0 };

		if (msg->msg != CURLMSG_DONE)
			continue;
		sym_curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
		if (!t)
			continue;

		response.curl_code = t->too_large ? CURLE_FILESIZE_EXCEEDED :
						    (int)msg->data.result;
		if (t->too_large)
			response.error = "response body too large";
		else if (t->error[0])
			response.error = t->error;
		else
			response.error =
				sym_curl_easy_strerror(msg->data.result);
		sym_curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE,
				      &response.status);
		response.body = t->response_body ? t->response_body : "";
		response.body_len = t->response_len;
		response.date = t->date;
		response.rate_limit = t->rate_limit_api ? t->rate_limit_api :
							  t->rate_limit_user;
		t->done(&response, t->userdata);
		transfer_free(t);
	}
}

static int http_on_io(sd_event_source *s, int fd, uint32_t revents,
		      void *userdata)
{
	struct http_client *client = userdata;
	int action = 0, running = 0;

	if (revents & (EPOLLIN | EPOLLPRI | EPOLLHUP))
		action |= CURL_CSELECT_IN;
	if (revents & EPOLLOUT)
		action |= CURL_CSELECT_OUT;
	if (revents & EPOLLERR)
		action |= CURL_CSELECT_ERR;
	sym_curl_multi_socket_action(client->multi, fd, action, &running);
	http_collect_done(client);
	return 0;
}

static void http_run_timeout(struct http_client *client)
{
	int running = 0;

	sym_curl_multi_socket_action(client->multi, CURL_SOCKET_TIMEOUT, 0,
				     &running);
	http_collect_done(client);
}

static int http_on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	http_run_timeout(userdata);
	return 0;
}

static int http_on_timer_now(sd_event_source *s, void *userdata)
{
	http_run_timeout(userdata);
	return 0;
}

/* curl's socket callback: watch, change or forget a descriptor. */
static int http_socket_cb(CURL *easy, curl_socket_t fd, int what,
			  void *userdata, void *socketp)
{
	struct http_client *client = userdata;
	sd_event_source *source = socketp;
	uint32_t events = 0;

	if (what == CURL_POLL_REMOVE) {
		if (source) {
			sd_event_source_disable_unref(source);
			sym_curl_multi_assign(client->multi, fd, NULL);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		events |= EPOLLOUT;

	if (source) {
		sd_event_source_set_io_events(source, events);
		return 0;
	}
	if (sd_event_add_io(client->event, &source, fd, events, http_on_io,
			    client) < 0)
		return -1;
	sym_curl_multi_assign(client->multi, fd, source);
	return 0;
}

/* curl's timer callback: -1 removes the timer, otherwise it fires once. */
static int http_timer_cb(CURLM *multi, long timeout_ms, void *userdata)
{
	struct http_client *client = userdata;
	uint64_t now;

	if (timeout_ms < 0) {
		sd_event_source_set_enabled(client->timer_now, SD_EVENT_OFF);
		return sd_event_source_set_enabled(client->timer,
						   SD_EVENT_OFF) < 0 ? -1 : 0;
	}
	/* The time source stays as it is, because curl replaces the timeout
	 * once the new transfers ran, and a stale wakeup is harmless. */
	if (timeout_ms == 0)
		return sd_event_source_set_enabled(client->timer_now,
						   SD_EVENT_ONESHOT) < 0 ?
			       -1 :
			       0;
	sd_event_source_set_enabled(client->timer_now, SD_EVENT_OFF);
	sd_event_now(client->event, CLOCK_MONOTONIC, &now);
	if (sd_event_source_set_time(client->timer,
				     now + (uint64_t)timeout_ms * 1000u) < 0)
		return -1;
	return sd_event_source_set_enabled(client->timer, SD_EVENT_ONESHOT) <
			       0 ?
		       -1 :
		       0;
}

/*
 * Gives each new TLS context the client's trust store.  curl would parse
 * the whole system CA bundle for every new connection, which cost more
 * CPU than everything else the daemon does for a ticket.
 */
static CURLcode http_ssl_ctx_cb(CURL *easy, void *ssl_ctx, void *userdata)
{
	struct http_client *client = userdata;

#ifdef SSL_OP_CLEANSE_PLAINTEXT
	/* OpenSSL keeps the last decrypted record, which may hold a ticket,
	 * until the next one overwrites it; this wipes it once curl has it. */
	SSL_CTX_set_options(ssl_ctx, SSL_OP_CLEANSE_PLAINTEXT);
#endif
	/* curl sets SSL_MODE_RELEASE_BUFFERS, so every request allocated,
	 * cleansed and freed two record buffers of about 17 KiB each.  A
	 * connection keeps them now, at most HTTP_CONNECTIONS_PER_HOST of
	 * them, and received plaintext is still cleansed as above. */
	SSL_CTX_clear_mode(ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set1_cert_store(ssl_ctx, client->trust);
	return CURLE_OK;
}

/* Loads the system's trusted CAs and the extra ca_file into one store. */
static int http_load_trust(X509_STORE **ret_store, const char *ca_file,
			   char **ret_error)
{
	X509_STORE *store = X509_STORE_new();
	struct stat st;

	*ret_store = NULL;
	if (!store)
		return -ENOMEM;
	if (X509_STORE_set_default_paths(store) != 1) {
		ERR_clear_error();
		X509_STORE_free(store);
		if (asprintf(ret_error, "cannot load the system's trusted CA "
					"certificates") < 0)
			*ret_error = NULL;
		return -EIO;
	}
	/* OpenSSL would block the event loop on a FIFO put in place of the
	 * file after the start check.
	 * NOTE: a file swapped in between this stat() and OpenSSL's open()
	 * still gets through, which takes write access to its folder. */
	if (ca_file) {
		const char *problem = NULL;

		if (stat(ca_file, &st) < 0)
			problem = strerror(errno);
		else if (!S_ISREG(st.st_mode))
			problem = "not a regular file";
		if (problem) {
			X509_STORE_free(store);
			if (asprintf(ret_error,
				     "cannot load the CA certificates in %s: %s",
				     ca_file, problem) < 0)
				*ret_error = NULL;
			return -EINVAL;
		}
	}
	if (ca_file && X509_STORE_load_locations(store, ca_file, NULL) != 1) {
		/* The first error names the cause, such as a bad base64
		 * line or a PEM block that is not a certificate. */
		unsigned long error = ERR_peek_error();
		const char *reason = ERR_reason_error_string(error);

		X509_STORE_free(store);
		if (asprintf(ret_error,
			     "cannot load the CA certificates in %s: %s; check "
			     "that it contains only PEM certificates",
			     ca_file, reason ? reason : "unknown error") < 0)
			*ret_error = NULL;
		ERR_clear_error();
		return -EIO;
	}
	*ret_store = store;
	return 0;
}

int http_check_trust(const char *ca_file, char **ret_error)
{
	X509_STORE *store;
	int r;

	*ret_error = NULL;
	r = http_load_trust(&store, ca_file, ret_error);
	X509_STORE_free(store);
	return r;
}

int http_client_set_ca_file(struct http_client *client, const char *ca_file,
			    char **ret_error)
{
	X509_STORE *store;
	int r;

	*ret_error = NULL;
	r = http_load_trust(&store, ca_file, ret_error);
	if (r < 0)
		return r;
	/* TLS contexts made before hold their own reference. */
	X509_STORE_free(client->trust);
	client->trust = store;
	return 0;
}

int http_client_new(sd_event *event, const char *ca_file,
		    struct http_client **ret_client, char **ret_error)
{
	struct http_client *client;
	int r;

	r = curl_dl_load(ret_error);
	if (r < 0)
		return r;
	client = calloc(1, sizeof(*client));
	if (!client)
		return -ENOMEM;
	client->event = sd_event_ref(event);
	r = http_load_trust(&client->trust, ca_file, ret_error);
	if (r < 0) {
		http_client_free(client);
		return r;
	}
	client->multi = sym_curl_multi_init();
	if (!client->multi) {
		http_client_free(client);
		return -ENOMEM;
	}
	r = sd_event_add_time(event, &client->timer, CLOCK_MONOTONIC,
			      UINT64_MAX, HTTP_TIMER_ACCURACY_USEC,
			      http_on_timer, client);
	if (r < 0) {
		http_client_free(client);
		return r;
	}
	sd_event_source_set_enabled(client->timer, SD_EVENT_OFF);
	r = sd_event_add_defer(event, &client->timer_now, http_on_timer_now,
			       client);
	if (r < 0) {
		http_client_free(client);
		return r;
	}
	sd_event_source_set_enabled(client->timer_now, SD_EVENT_OFF);

	sym_curl_multi_setopt(client->multi, CURLMOPT_SOCKETFUNCTION,
			      http_socket_cb);
	sym_curl_multi_setopt(client->multi, CURLMOPT_SOCKETDATA, client);
	sym_curl_multi_setopt(client->multi, CURLMOPT_TIMERFUNCTION,
			      http_timer_cb);
	sym_curl_multi_setopt(client->multi, CURLMOPT_TIMERDATA, client);
	sym_curl_multi_setopt(client->multi, CURLMOPT_PIPELINING,
			      (long)CURLPIPE_MULTIPLEX);
	sym_curl_multi_setopt(client->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
			      (long)HTTP_CONNECTIONS_PER_HOST);
	/* curl sizes its cache of idle connections by the transfers added at
	 * the moment, so it closed connections whenever few requests were in
	 * flight, and the next burst paid for new TLS handshakes. */
	sym_curl_multi_setopt(client->multi, CURLMOPT_MAXCONNECTS,
			      (long)HTTP_CONNECTIONS_PER_HOST);

	/* Every transfer is a new easy handle, so TLS session resumption
	 * needs the shared session cache.  The loop is single-threaded, so
	 * the share needs no lock functions. */
	client->share = sym_curl_share_init();
	if (!client->share) {
		http_client_free(client);
		return -ENOMEM;
	}
	sym_curl_share_setopt(client->share, CURLSHOPT_SHARE,
			      CURL_LOCK_DATA_SSL_SESSION);
	sym_curl_share_setopt(client->share, CURLSHOPT_SHARE,
			      CURL_LOCK_DATA_DNS);
	*ret_client = client;
	return 0;
}

void http_client_free(struct http_client *client)
{
	struct http_transfer *next;

	if (!client)
		return;
	for (struct http_transfer *t = client->transfers; t; t = next) {
		next = t->next;
		transfer_free(t);
	}
	if (client->multi)
		sym_curl_multi_cleanup(client->multi);
	if (client->share)
		sym_curl_share_cleanup(client->share);
	X509_STORE_free(client->trust);
	sd_event_source_disable_unref(client->timer);
	sd_event_source_disable_unref(client->timer_now);
	sd_event_unref(client->event);
	free(client);
}

static size_t http_write_cb(char *data, size_t size, size_t n, void *userdata)
{
	struct http_transfer *t = userdata;
	size_t len = size * n;
	char *grown;

	if (t->response_len + len > HTTP_BODY_MAX) {
		t->too_large = true;
		return 0;
	}
	if (t->response_len + len + 1 > t->response_cap) {
		size_t cap = t->response_cap ? t->response_cap * 2 : 4096;

		while (cap < t->response_len + len + 1)
			cap *= 2;
		grown = malloc(cap);
		if (!grown)
			return 0;
		if (t->response_body) {
			memcpy(grown, t->response_body, t->response_len);
			OPENSSL_cleanse(t->response_body, t->response_cap);
			free(t->response_body);
		}
		t->response_body = grown;
		t->response_cap = cap;
	}
	memcpy(t->response_body + t->response_len, data, len);
	t->response_len += len;
	t->response_body[t->response_len] = '\0';
	return len;
}

/* Keeps the value of header line data when it is the header name. */
static void http_keep_header(const char *data, size_t len, const char *name,
			     char **ret_value)
{
	size_t name_len = strlen(name);
	const char *value;
	size_t value_len;

	if (len <= name_len || strncasecmp(data, name, name_len) != 0 ||
	    data[name_len] != ':')
		return;
	value = data + name_len + 1;
	value_len = len - name_len - 1;
	while (value_len && (*value == ' ' || *value == '\t')) {
		value++;
		value_len--;
	}
	while (value_len && (value[value_len - 1] == '\r' ||
			     value[value_len - 1] == '\n'))
		value_len--;
	free(*ret_value);
	*ret_value = strndup(value, value_len);
}

static size_t http_header_cb(char *data, size_t size, size_t n,
			     void *userdata)
{
	struct http_transfer *t = userdata;
	size_t len = size * n;

	http_keep_header(data, len, "date", &t->date);
	http_keep_header(data, len, "x-ratelimit-user-api",
			 &t->rate_limit_api);
	http_keep_header(data, len, "x-ratelimit-user", &t->rate_limit_user);
	return len;
}

static int transfer_setup(struct http_transfer *t,
			  const struct http_request *request)
{
	CURL *e = t->easy;

	for (const char *const *h = request->headers; h && *h; h++) {
		struct curl_slist *list = sym_curl_slist_append(t->headers, *h);

		if (!list)
			return -ENOMEM;
		t->headers = list;
	}
	t->body = malloc(request->body_len + 1);
	if (!t->body)
		return -ENOMEM;
	memcpy(t->body, request->body, request->body_len);
	t->body[request->body_len] = '\0';
	t->body_len = request->body_len;

	sym_curl_easy_setopt(e, CURLOPT_URL, request->url);
#if LIBCURL_VERSION_NUM >= 0x075500
	sym_curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
#else
	sym_curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
	sym_curl_easy_setopt(e, CURLOPT_POST, 1L);
	sym_curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
	sym_curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
			     (curl_off_t)t->body_len);
	sym_curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
	/* A request body is a few hundred bytes, and each transfer allocates
	 * and wipes its upload buffer, so the smallest size curl allows is
	 * enough. */
	sym_curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE,
			     HTTP_UPLOAD_BUFFER_SIZE);
	sym_curl_easy_setopt(e, CURLOPT_USERAGENT, HTTP_USER_AGENT);
	sym_curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	sym_curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	/* The trust store comes from http_ssl_ctx_cb(); without these curl
	 * would also load its own CA bundle for every connection. */
	sym_curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
	sym_curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
	sym_curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, http_ssl_ctx_cb);
	sym_curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, t->client);
	sym_curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	sym_curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	sym_curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, request->timeout_ms);
	sym_curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			     request->timeout_ms < HTTP_CONNECT_TIMEOUT_MS ?
				     request->timeout_ms :
				     HTTP_CONNECT_TIMEOUT_MS);
	sym_curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write_cb);
	sym_curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	sym_curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_header_cb);
	sym_curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
	sym_curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
	sym_curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	sym_curl_easy_setopt(e, CURLOPT_SHARE, t->client->share);
	/* HTTP/2 when the server offers it in ALPN, else HTTP/1.1. */
	sym_curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
			     (long)CURL_HTTP_VERSION_2TLS);
	return 0;
}

int http_client_post(struct http_client *client,
		     const struct http_request *request, http_done_fn done,
		     void *userdata, struct http_transfer **ret_transfer)
{
	struct http_transfer *t;
	int r;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->client = client;
	t->done = done;
	t->userdata = userdata;
	t->next = client->transfers;
	if (t->next)
		t->next->prev = t;
	client->transfers = t;

	t->easy = sym_curl_easy_init();
	if (!t->easy) {
		transfer_free(t);
		return -ENOMEM;
	}
	r = transfer_setup(t, request);
	if (r < 0) {
		transfer_free(t);
		return r;
	}
	if (sym_curl_multi_add_handle(client->multi, t->easy) != CURLM_OK) {
		transfer_free(t);
		return -EIO;
	}
	if (ret_transfer)
		*ret_transfer = t;
	return 0;
}

void http_transfer_cancel(struct http_transfer *transfer)
{
	if (transfer)
		transfer_free(transfer);
}
