/*
 * Peer credentials and the authorization rule of cloudapp-ticketd.
 */

#include "config.h"

#include "peer.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Returns the malloc'd user name of uid, or NULL. */
static char *peer_user_name(uid_t uid)
{
	struct passwd pw, *result = NULL;
	long size = sysconf(_SC_GETPW_R_SIZE_MAX);
	char *buf, *name = NULL;

	if (size <= 0)
		size = 16384;
	buf = malloc((size_t)size);
	if (!buf)
		return NULL;
	if (getpwuid_r(uid, &pw, buf, (size_t)size, &result) == 0 && result)
		name = strdup(pw.pw_name);
	free(buf);
	return name;
}

int peer_read(int fd, struct peer *ret_peer)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	memset(ret_peer, 0, sizeof(*ret_peer));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	ret_peer->uid = cred.uid;
	ret_peer->gid = cred.gid;
	ret_peer->pid = cred.pid;
	/* Only a uid other than root is matched by name. */
	if (cred.uid != 0)
		ret_peer->name = peer_user_name(cred.uid);
	return 0;
}

void peer_clear(struct peer *peer)
{
	free(peer->name);
	peer->name = NULL;
}

int peer_authorize(const struct peer *peer, const char *user,
		   char **ret_error)
{
	*ret_error = NULL;
	if (peer->uid == 0)
		return 0;
	if (peer->name && strcmp(peer->name, user) == 0)
		return 0;
	if (asprintf(ret_error,
		     "uid %u (%s) may not ask for the ticket of user %s; only "
		     "root may ask for another user",
		     (unsigned)peer->uid, peer->name ? peer->name : "no name",
		     user) < 0)
		*ret_error = NULL;
	return -EPERM;
}
