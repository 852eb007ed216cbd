/*
 * curl-floor: a minimal libcurl client, to measure the CPU time of the two
 * HTTPS calls behind one ticket with nothing of cloudapp-ticketd around
 * them.  It sends the daemon's kind of request, a form-encoded POST with
 * its headers, over kept-alive connections.
 *
 * It keeps the daemon's libcurl settings that change what a request costs.
 * Each request gets a new easy handle, connections keep their TLS record
 * buffers, the upload buffer has curl's smallest size, and
 * curl_multi_socket_action() runs on an epoll loop with one epoll_ctl()
 * per change.  There is no Unix socket, signing, JSON or sd-event.  The
 * time counted is the whole process's, OpenSSL and the kernel's socket
 * work included.
 *
 * The requests carry an unknown AccessKeyId, so the emulator replies to each
 * with a short JSON error instead of a ticket.
 *
 * Usage: curl-floor URL CA_FILE TICKETS CONNECTIONS
 * Prints the process's CPU time per ticket (two requests) in ms.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include <curl/curl.h>
#include <openssl/ssl.h>

static char body[512];
/* The daemon's headers, with made-up values of the same lengths. */
static const char *const request_headers[] = {
	"content-type: application/x-www-form-urlencoded",
	"x-acs-action: GetConnectionTicket",
	"x-acs-version: 2021-09-01",
	"x-acs-date: 2026-12-04T00:00:00Z",
	"x-acs-signature-nonce: 0123456789abcdef0123456789abcdef",
	"x-acs-content-sha256: "
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	"authorization: ACS3-HMAC-SHA256 Credential=LTAIfloor0000000000,"
	"SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;"
	"x-acs-signature-nonce;x-acs-version,Signature="
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	"Expect:",
};
static struct curl_slist *headers;
static const char *url, *ca_file;
static int epoll_fd;
static long timeout_ms = -1;

static size_t discard(char *ptr, size_t size, size_t n, void *data)
{
	(void)ptr;
	(void)data;
	return size * n;
}

/* Registers, changes or drops a socket in the epoll set.  A socket seen
 * before carries a mark from curl_multi_assign(), so each change is one
 * epoll_ctl() call, as in an sd-event loop. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp,
		     void *socketp)
{
	static char registered;
	CURLM *multi = userp;
	struct epoll_event ev = { .data.fd = fd };

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	if (socketp)
		return epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -1 : 0;
	if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -1;
	curl_multi_assign(multi, fd, &registered);
	return 0;
}

/* Keeps each connection's TLS record buffers, as the daemon does, instead
 * of allocating and freeing them for every request. */
static CURLcode on_ssl_ctx(CURL *easy, void *ssl_ctx, void *userp)
{
	(void)easy;
	(void)userp;
	SSL_CTX_clear_mode(ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
	return CURLE_OK;
}

static int on_timer(CURLM *multi, long ms, void *userp)
{
	(void)multi;
	(void)userp;
	timeout_ms = ms;
	return 0;
}

static CURL *request_new(void)
{
	CURL *easy = curl_easy_init();

	if (!easy) {
		fprintf(stderr, "curl-floor: curl_easy_init() failed\n");
		exit(1);
	}
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_CAINFO, ca_file);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(easy, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
	/* The daemon's upload buffer size, curl's smallest. */
	curl_easy_setopt(easy, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
	return easy;
}

/* Parses a count from 1 to 1000000.  Returns 0 for anything else. */
static int parse_count(const char *text)
{
	char *end;
	long value = strtol(text, &end, 10);

	if (*text == '\0' || *end != '\0' || value < 1 || value > 1000000)
		return 0;
	return (int)value;
}

static double cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* Runs count requests with at most connections in flight.  Returns the
 * number of failed requests. */
static int run(CURLM *multi, int count, int connections)
{
	int started = 0, done = 0, failed = 0, running, left;

	while (done < count) {
		struct epoll_event events[64];
		CURLMsg *msg;
		int n, i;

		while (started < count && started - done < connections) {
			curl_multi_add_handle(multi, request_new());
			started++;
		}
		n = epoll_wait(epoll_fd, events, 64, (int)timeout_ms);
		if (n == 0)
			curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0,
						 &running);
		for (i = 0; i < n; i++) {
			int flags = 0;

			if (events[i].events & EPOLLIN)
				flags |= CURL_CSELECT_IN;
			if (events[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (events[i].events & (EPOLLERR | EPOLLHUP))
				flags |= CURL_CSELECT_ERR;
			curl_multi_socket_action(multi, events[i].data.fd,
						 flags, &running);
		}
		while ((msg = curl_multi_info_read(multi, &left))) {
			long code = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle,
					  CURLINFO_RESPONSE_CODE, &code);
			if (msg->data.result != CURLE_OK || code == 0)
				failed++;
			curl_multi_remove_handle(multi, msg->easy_handle);
			curl_easy_cleanup(msg->easy_handle);
			done++;
		}
	}
	return failed;
}

int main(int argc, char **argv)
{
	int tickets, connections, failed;
	double before, after;
	size_t i;
	CURLM *multi;

	if (argc != 5) {
		fprintf(stderr,
			"usage: curl-floor URL CA_FILE TICKETS CONNECTIONS\n");
		return 2;
	}
	url = argv[1];
	ca_file = argv[2];
	tickets = parse_count(argv[3]);
	connections = parse_count(argv[4]);
	if (tickets == 0 || connections == 0) {
		fprintf(stderr, "curl-floor: TICKETS and CONNECTIONS must be "
				"whole numbers from 1 to 1000000\n");
		return 2;
	}
	/* A body and headers about as long as the daemon's. */
	snprintf(body, sizeof(body),
		 "AppId=ca-emulator0001&EndUserId=d0001&ProductType=CloudApp&"
		 "TaskId=%032d", 0);
	for (i = 0; i < sizeof(request_headers) / sizeof(*request_headers);
	     i++)
		headers = curl_slist_append(headers, request_headers[i]);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, multi);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS,
			  (long)connections);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)connections);
	/* Opens the connections first, as a daemon that has been up has. */
	failed = run(multi, connections * 2, connections);
	before = cpu_ms();
	failed += run(multi, tickets * 2, connections);
	after = cpu_ms();
	printf("%d tickets, %d failed requests, %.3f ms CPU per ticket\n",
	       tickets, failed, (after - before) / tickets);
	return failed ? 1 : 0;
}
