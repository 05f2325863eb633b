/*
 * upgrade_sessions.h - phase 2 of an upgrade: the old process (A) hands
 * its established sessions to the new one (B) over the hand-over socket
 * (upgrade.h), after B accepts on the listeners.
 * docs/internals/handoff.md, "Phase 2". Main thread only.
 */
#ifndef ZCRELAY_UPGRADE_SESSIONS_H
#define ZCRELAY_UPGRADE_SESSIONS_H

struct zcr_worker;

/* The workers whose sessions are handed over (A) or taken (B). */
void zcr_upgrade_set_workers(struct zcr_worker *w, unsigned n);

/*
 * zcr_upgrade_hand_sessions - A, after B's READY, once A's workers stop
 * accepting: hand B, on sock, every established session that can move,
 * in batches; a session B did not take resumes here. Sessions not
 * relaying yet are waited for, up to 5 s, and go in later batches. If B (pid) does
 * not answer a batch, it is killed first, so that no session runs
 * twice, and the rest stay here. Returns how many B took, or -errno
 * once B failed (logged).
 */
long zcr_upgrade_hand_sessions(int sock, int pid);

/*
 * zcr_upgrade_take_sessions - B, after READY: adopt A's batches on sock
 * (each on one worker, answered before that worker runs them) until
 * A's DONE, a silence of 10 s, or an error. Logs what it took.
 */
void zcr_upgrade_take_sessions(int sock);

#endif
