/*
 * Short messages for the person at the screen: what went wrong, in plain
 * words, for the greeter and the session launcher.  The full error, with
 * its Code and RequestId, goes to the log.
 */

#ifndef CLOUDAPP_MESSAGES_H
#define CLOUDAPP_MESSAGES_H

/* Message when the daemon cannot be reached at all. */
#define CLOUDAPP_MESSAGE_UNREACHABLE                                           \
	"The cloud app service is not running on this computer. Please "      \
	"contact your administrator."

/*
 * Returns the message for an error reply: its error name and, for cloud
 * errors, the API's Code (NULL when there is none).
 */
const char *cloudapp_human_message(const char *error, const char *code);

#endif
