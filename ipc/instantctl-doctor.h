/* instantctl-doctor.h: `instantctl doctor`, which checks an installation step by
 * step and says for each failure what is wrong and the command that fixes it. */
#ifndef INSTANTD_INSTANTCTL_DOCTOR_H
#define INSTANTD_INSTANTCTL_DOCTOR_H

/* Borrowed for the call. */
struct ctl_doctor_options {
	const char *socket;	/* --socket, or NULL: $INSTANTD_SOCKET, else the configuration's */
	int timeout_ms;		/* per network step and per wait for the daemon */
};

/* argv[0] is "doctor"; optional PROFILE names limit the per-profile checks.
 * Returns the exit status: 0 when every check passed, 1 when one failed,
 * 2 on a usage error. */
int ctl_doctor_main(int argc, char **argv, const struct ctl_doctor_options *o);

#endif
