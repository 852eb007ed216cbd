/*
 * cloudapp-ticketd: fetches Alibaba Cloud App Streaming connection tickets
 * for local users and serves them over a Unix socket.  The listening socket
 * comes from systemd socket activation or from --listen; everything runs
 * in one sd-event loop.
 */

#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "conf.h"
#include "credentials.h"
#include "curl-dl.h"
#include "http.h"
#include "log.h"
#include "server.h"
#include "task.h"

/* Descriptors kept for the journal, NSS, libcurl's connections and the
 * listening sockets, beyond client connections. */
#define MAIN_FD_RESERVE 128

/* Backlog of the socket made by --listen. */
#define MAIN_LISTEN_BACKLOG 128

struct daemon {
	sd_event *event;
	const char *config_path;
	struct daemon_config *config;
	struct task_registry *registry;
	struct server *server;
	unsigned last_total, last_running;
	bool socket_activated;
	sd_event_source *idle_timer; /* armed while nothing is going on */
	bool trimmed; /* the heap was trimmed since the daemon became idle */
};

struct options {
	const char *config_path;
	const char *listen_path;
	bool debug;
	bool check_config;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: cloudapp-ticketd [OPTION]...\n"
		"Fetch App Streaming connection tickets for local users.\n"
		"\n"
		"  -c, --config FILE   read FILE instead of %s\n"
		"  -l, --listen PATH   listen on PATH instead of a socket "
		"from systemd\n"
		"  -t, --check-config  check the configuration and the secret "
		"file, then exit\n"
		"  -d, --debug         log debug messages\n"
		"  -h, --help          show this help and exit\n"
		"  -V, --version       show the version and exit\n",
		CLOUDAPP_CONFIG_FILE);
}

/* Returns -1 to go on, or the exit status. */
static int parse_options(int argc, char **argv, struct options *options)
{
	static const struct option long_options[] = {
		{ "check-config", no_argument, NULL, 't' },
		{ "config", required_argument, NULL, 'c' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "listen", required_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	options->config_path = CLOUDAPP_CONFIG_FILE;
	while ((c = getopt_long(argc, argv, "c:dhl:tV", long_options, NULL)) !=
	       -1) {
		switch (c) {
		case 'c':
			options->config_path = optarg;
			break;
		case 'd':
			options->debug = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'l':
			options->listen_path = optarg;
			break;
		case 't':
			options->check_config = true;
			break;
		case 'V':
			printf("cloudapp-ticketd %s\n", PACKAGE_VERSION);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_FAILURE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "cloudapp-ticketd: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return EXIT_FAILURE;
	}
	return -1;
}

/* Creates, binds and listens on a socket at path, replacing a stale one. */
static int listen_on_path(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_error("socket path %s is too long (at most %zu bytes)",
			  path, sizeof(addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_error("%s exists and is not a socket; remove it or "
				  "choose another --listen path",
				  path);
			close(fd);
			return -EEXIST;
		}
		/* A socket that accepts a connection belongs to a running
		 * daemon; only a stale one is replaced. */
		if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 ||
		    errno == EAGAIN) {
			log_error("another process listens on %s; stop it or "
				  "choose another --listen path",
				  path);
			close(fd);
			return -EADDRINUSE;
		}
		close(fd);
		unlink(path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    0);
		if (fd < 0)
			return -errno;
	}

	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    chmod(path, 0666) < 0 || listen(fd, MAIN_LISTEN_BACKLOG) < 0) {
		int r = -errno;

		log_error("cannot listen on %s: %s", path, strerror(-r));
		close(fd);
		return r;
	}
	return fd;
}

/* Adds the sockets passed by systemd, or the one at --listen. */
static int setup_listeners(struct daemon *d, const char *listen_path)
{
	int n, r;

	if (listen_path) {
		int fd = listen_on_path(listen_path);

		if (fd < 0)
			return fd;
		return server_add_listener(d->server, fd);
	}

	n = sd_listen_fds(1);
	if (n < 0) {
		log_error("cannot read the sockets from systemd: %s",
			  strerror(-n));
		return n;
	}
	if (n == 0) {
		log_error("no socket from systemd; start cloudapp-ticketd.socket "
			  "or give --listen PATH");
		return -EBADF;
	}
	d->socket_activated = true;
	for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
		if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
			log_error("socket %d from systemd is not a listening "
				  "Unix stream socket; check ListenStream= in "
				  "cloudapp-ticketd.socket",
				  fd);
			return -EBADF;
		}
		/* SO_PEERCRED of a connection names the process that last
		 * called listen(), which for this socket was systemd.  Calling
		 * it again lets cloudappctl and the module check the daemon's
		 * own uid.  NOTE: this replaces a smaller Backlog= of the
		 * socket unit with SOMAXCONN, systemd's default. */
		if (listen(fd, SOMAXCONN) < 0)
			log_warning("listen() again on socket %d failed: "
				    "%s, ignoring",
				    fd, strerror(errno));
		r = server_add_listener(d->server, fd);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool daemon_is_idle(const struct daemon *d)
{
	unsigned total, running;

	task_registry_count(d->registry, &total, &running);
	return total == 0 && server_count_connections(d->server) == 0;
}

/*
 * Exits after idle_timeout with no connection and no task, since systemd
 * keeps listening and starts the daemon again for the next client.  A
 * ticket waiting for pickup keeps the daemon running, because it exists
 * only in memory.
 */
static int on_idle_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct daemon *d = userdata;

	sd_event_source_disable_unref(d->idle_timer);
	d->idle_timer = NULL;
	/* A client already in the backlog is served first. */
	if (!daemon_is_idle(d) || server_has_pending(d->server))
		return 0;
	log_info("idle for %lld s, exiting; systemd starts the daemon again "
		 "on the next connection",
		 (long long)d->config->idle_timeout_ms / 1000);
	return sd_event_exit(d->event, 0);
}

/* Arms the idle timer when the daemon became idle, disarms it when not. */
static void update_idle(struct daemon *d)
{
	uint64_t now = 0;

	if (!d->socket_activated || d->config->idle_timeout_ms == 0)
		return;
	if (!daemon_is_idle(d)) {
		sd_event_source_disable_unref(d->idle_timer);
		d->idle_timer = NULL;
		return;
	}
	if (d->idle_timer)
		return;
	sd_event_now(d->event, CLOCK_MONOTONIC, &now);
	if (sd_event_add_time(d->event, &d->idle_timer, CLOCK_MONOTONIC,
			      now + (uint64_t)d->config->idle_timeout_ms * 1000u,
			      1000000u, on_idle_timer, d) < 0)
		log_warning("cannot arm the idle timer; the daemon stays "
			    "running, ignoring");
}

/*
 * Returns the free parts of the heap to the kernel once the daemon is
 * idle, since glibc keeps most of what a burst of logins grew.  After 300
 * tickets at once from bench/loadgen.py, this lowered the daemon's RSS
 * from 18.6 to 16.4 MiB (Debian 12, glibc 2.36).
 */
static void trim_heap_when_idle(struct daemon *d)
{
	bool idle = daemon_is_idle(d);

	if (idle && !d->trimmed)
		malloc_trim(0);
	d->trimmed = idle;
}

/* Keeps the STATUS= line that systemctl status shows up to date.  It is
 * refreshed once a second, not after each call, because every sd_notify()
 * opens a socket and sends a message that PID 1 parses. */
static void update_status(void *userdata)
{
	struct daemon *d = userdata;
	unsigned total, running;

	update_idle(d);
	trim_heap_when_idle(d);
	task_registry_count(d->registry, &total, &running);
	if (total == d->last_total && running == d->last_running)
		return;
	d->last_total = total;
	d->last_running = running;
	sd_notifyf(0, "STATUS=Serving tickets; %u tasks running, %u results "
		      "waiting for pickup",
		   running, total - running);
}

static void on_server_changed(void *userdata)
{
	update_idle(userdata);
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	uint64_t now = 0;

	update_status(userdata);
	sd_event_now(sd_event_source_get_event(s), CLOCK_MONOTONIC, &now);
	sd_event_source_set_time(s, now + 1000000u);
	sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return 0;
}

/*
 * Raises the soft limit of open files to the hard one, as systemd advises
 * for services that need many descriptors (its default soft limit is
 * 1024), and lowers max_connections to what the limit allows.
 */
static void setup_file_limit(struct daemon_config *config)
{
	struct rlimit limit;
	rlim_t usable;

	if (getrlimit(RLIMIT_NOFILE, &limit) < 0)
		return;
	if (limit.rlim_cur < limit.rlim_max) {
		limit.rlim_cur = limit.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &limit) < 0)
			getrlimit(RLIMIT_NOFILE, &limit);
	}
	if (limit.rlim_cur == RLIM_INFINITY ||
	    limit.rlim_cur <= MAIN_FD_RESERVE)
		return;
	usable = limit.rlim_cur - MAIN_FD_RESERVE;
	if (config->max_connections > usable) {
		log_notice("the open file limit is %llu, so max_connections "
			   "is lowered from %u to %llu",
			   (unsigned long long)limit.rlim_cur,
			   config->max_connections, (unsigned long long)usable);
		config->max_connections = (unsigned)usable;
	}
}

/*
 * Rereads the configuration on SIGHUP (systemctl reload).  A broken file
 * is logged and the running configuration stays; tasks in flight finish
 * with the configuration they started with.
 */
static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si,
		     void *userdata)
{
	struct daemon *d = userdata;
	struct daemon_config *config = NULL;
	char *error = NULL;
	int r;

	sd_notify(0, "RELOADING=1\nSTATUS=Reloading the configuration");
	r = config_load(d->config_path, &config, &error);
	if (r == 0) {
		setup_file_limit(config);
		r = task_registry_set_config(d->registry, config, &error);
	}
	if (r < 0) {
		log_error("reloading the configuration failed, keeping the "
			  "previous one: %s",
			  error ? error : strerror(-r));
		free(error);
		config_unref(config);
	} else {
		server_set_config(d->server, config);
		config_unref(d->config);
		d->config = config;
		log_info("reloaded the configuration from %s", d->config_path);
	}
	d->last_total = d->last_running = UINT_MAX;
	sd_notify(0, "READY=1");
	update_status(d);
	return 0;
}

static int setup_event_loop(struct daemon *d)
{
	sigset_t mask;
	int r;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* sd_event_default() would make sd-event check the calling thread
	 * with a gettid() system call on every loop iteration. */
	r = sd_event_new(&d->event);
	if (r < 0)
		return r;
	/* With WatchdogSec= in the unit, sd-event sends WATCHDOG=1 from the
	 * loop, so a stuck loop gets the daemon restarted. */
	r = sd_event_set_watchdog(d->event, true);
	if (r < 0)
		return r;
	/* A NULL handler makes sd-event exit the loop on these signals. */
	r = sd_event_add_signal(d->event, NULL, SIGTERM, NULL, NULL);
	if (r >= 0)
		r = sd_event_add_signal(d->event, NULL, SIGINT, NULL, NULL);
	if (r >= 0)
		r = sd_event_add_signal(d->event, NULL, SIGHUP, on_sighup, d);
	if (r >= 0)
		r = sd_event_add_time_relative(d->event, NULL, CLOCK_MONOTONIC,
					       1000000u, 0, on_status_timer, d);
	return r;
}

static void daemon_free(struct daemon *d)
{
	sd_event_source_disable_unref(d->idle_timer);
	server_free(d->server);
	task_registry_free(d->registry);
	config_unref(d->config);
	sd_event_unref(d->event);
}

/*
 * Checks for --check-config what config_load() leaves to the running
 * daemon: the credentials, and every certificate of the trusted CAs, which
 * the daemon loads only for its first task.  Returns the exit status.
 */
static int check_config(const struct daemon_config *config,
			const char *config_path)
{
	struct credentials credentials;
	char *error = NULL;
	int r;

	r = credentials_load(config, &credentials, &error);
	if (r < 0) {
		log_error("%s", error ? error : strerror(-r));
		free(error);
		return EXIT_FAILURE;
	}
	r = http_check_trust(config->ca_file, &error);
	if (r < 0) {
		log_error("ca_file: %s", error ? error : strerror(-r));
		free(error);
		credentials_clear(&credentials);
		return EXIT_FAILURE;
	}
	printf("%s: configuration is valid; credentials from %s\n",
	       config_path, credentials.source);
	credentials_clear(&credentials);
	return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
	struct options options = { 0 };
	struct daemon d = { 0 };
	char *error = NULL;
	int r;

	r = parse_options(argc, argv, &options);
	if (r >= 0)
		return r;
	log_setup(options.debug);

	d.config_path = options.config_path;
	r = config_load(options.config_path, &d.config, &error);
	if (r < 0) {
		log_error("invalid configuration: %s",
			  error ? error : strerror(-r));
		free(error);
		sd_notifyf(0, "STATUS=Invalid configuration in %s",
			   options.config_path);
		return EXIT_FAILURE;
	}
	if (options.check_config) {
		r = check_config(d.config, options.config_path);
		config_unref(d.config);
		return r;
	}
	setup_file_limit(d.config);
	/* The process keeps the AccessKey and tickets in memory, so it
	 * allows no core dump and no ptrace by other users. */
	if (prctl(PR_SET_DUMPABLE, 0) < 0)
		log_warning("cannot turn off core dumps: %s, ignoring",
			    strerror(errno));

	r = setup_event_loop(&d);
	if (r >= 0)
		r = task_registry_new(d.event, d.config, &d.registry, &error);
	if (r >= 0)
		r = server_new(d.event, d.config, d.registry, &d.server);
	if (r < 0) {
		log_error("cannot start: %s", error ? error : strerror(-r));
		free(error);
	}
	/* setup_listeners() logs its own errors, with the path or fd. */
	else
		r = setup_listeners(&d, options.listen_path);
	if (r < 0) {
		daemon_free(&d);
		return EXIT_FAILURE;
	}
	server_set_changed_callback(d.server, on_server_changed, &d);
	update_idle(&d);

	log_info("serving tickets from %s for AppId %s", d.config->endpoint,
		 d.config->app_id);
	sd_notify(0, "READY=1\nSTATUS=Serving tickets; no tasks running");
	r = sd_event_loop(d.event);
	sd_notify(0, "STOPPING=1\nSTATUS=Stopping");
	log_info("stopping");

	/* systemd removes its own socket; a --listen socket is ours. */
	if (options.listen_path)
		unlink(options.listen_path);
	daemon_free(&d);
	/* libcurl is loaded only once a task has started. */
	curl_dl_cleanup();
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
