/*
 * Who may ask: the caller's uid comes from SO_PEERCRED, never from the
 * message.  Root may act for any user; any other uid only for its own
 * user name.
 */

#ifndef CLOUDAPP_PEER_H
#define CLOUDAPP_PEER_H

#include <sys/types.h>

struct peer {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	/* The uid's user name, or NULL for root and for a uid without one. */
	char *name;
};

/* Reads the peer credentials of a connected socket. */
int peer_read(int fd, struct peer *ret_peer);

void peer_clear(struct peer *peer);

/*
 * Decides whether peer may act for user.  Returns 0 or -EPERM with a
 * message in *ret_error.  Root may act for any name, so whether user is a
 * known account is left to policy_check_user().
 */
int peer_authorize(const struct peer *peer, const char *user,
		   char **ret_error);

#endif
