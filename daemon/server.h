/*
 * The daemon's Unix socket server: accepts connections, reads NUL-framed
 * JSON calls, checks the caller's peer credentials and replies from the
 * ticket tasks.
 */

#ifndef CLOUDAPP_SERVER_H
#define CLOUDAPP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "conf.h"
#include "task.h"

/* How long accepting pauses after accept() failed, e.g. with EMFILE. */
#define SERVER_ACCEPT_PAUSE_MS 1000u
/* At most one warning per this interval about a local user that hit its
 * per-uid limit. */
#define SERVER_WARNING_INTERVAL_USEC UINT64_C(10000000)

/* Maximum number of clients accepted per wakeup of a listening socket. */
#define SERVER_ACCEPT_BATCH 16u

/* How long a connection stays, after its final error, for the client to
 * read the error and hang up. */
#define SERVER_LINGER_MS 1000u

/* Most reply bytes queued for a client that does not read. */
#define SERVER_OUTPUT_MAX ((size_t)1024 * 1024)

struct server;

int server_new(sd_event *event, const struct daemon_config *config,
	       struct task_registry *registry, struct server **ret_server);

void server_free(struct server *server);

/* Serves a listening socket; the server takes ownership of fd. */
int server_add_listener(struct server *server, int fd);

/* Switches to a reloaded configuration; the caller keeps it alive. */
void server_set_config(struct server *server,
		       const struct daemon_config *config);

/* Returns the number of open client connections. */
unsigned server_count_connections(const struct server *server);

/* Returns true when a client waits in a listening socket's backlog. */
bool server_has_pending(const struct server *server);

/* Calls changed(userdata) after each call handled, e.g. to update STATUS=. */
void server_set_changed_callback(struct server *server,
				 void (*changed)(void *userdata),
				 void *userdata);

#endif
