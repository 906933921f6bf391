/* simcmd: the daemon -> worker command server on WORKER_LISTEN. Every request
 * must carry a valid X-Timestamp/X-Signature pair; answers are JSON. */
#ifndef SB_SIMCMD_H
#define SB_SIMCMD_H

struct sim;

/* Creates the evhttp server on s->listen_host:s->listen_port and stores it in
 * s->http. 0, or -1 when it cannot listen (logged). */
int simcmd_start(struct sim *s);

/* Frees the server and the sends still waiting for their typing delay (their
 * MESSAGE_SENT is not posted; a retried /send answers "duplicate" and posts it),
 * and closes the connections of /send requests held by send mode "hang"
 * without an answer. */
void simcmd_stop(struct sim *s);

#endif
