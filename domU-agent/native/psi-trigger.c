/*
 * xmem-psi-trigger: the guest agent's native helper. Node cannot wait for what this waits for.
 *
 *  1. A memory-PSI trigger: it writes "some <stall_us> <window_us>" to /proc/pressure/memory
 *     and waits in poll(POLLPRI). The kernel wakes it when the stall time in a window reaches
 *     the threshold (at most once per window).
 *  2. Optionally (-m), a meminfo watch. Every -i ms it reads /proc/meminfo (and the balloon's
 *     current_kb) and checks linear forms the agent sent on stdin. It wakes the agent only when
 *     a value leaves its range, so an idle guest's agent does not wake every second. The
 *     helper holds no policy: the agent computes the ranges from its own thresholds.
 *
 * stdout, one line per event:  "ready"  (trigger armed, watch set up)
 *                              "ready mem <why>"  (no trigger possible, but the meminfo
 *                                        watch runs: only with -m; <why> also on stderr)
 *                              "s"      (PSI trigger event: a stall happened)
 *                              "m"      (meminfo left the ranges, or could not be read;
 *                                        the watch is then off until new ranges arrive)
 *                              "e"      (a command it does not understand: no watch)
 * stdin, one line per command: "w"                            no watch
 *                              "w lo hi c0 c1 .. c8 [lo hi c0 .. c8]..."
 *   Each form is v = c0*MemTotal + c1*MemFree + c2*Buffers + c3*Cached + c4*SwapTotal
 *   + c5*SwapFree + c6*MemAvailable + c7*Committed_AS + c8*balloon_current (KiB; balloon 0
 *   without -b or when unreadable). "m" is sent when any v < lo or v > hi. A malformed line
 *   turns the watch off. The first check of a new watch is one interval after it arrives.
 *
 * Exit codes: 0 when stdin or stdout is closed (the agent is gone: it never outlives it),
 * 2 on bad arguments, 3 when the kernel or the file refuses the trigger (no PSI, PSI off,
 * not procfs, not permitted) and there is no meminfo watch to run instead, or the meminfo
 * file cannot be opened; 1 on any other error. Every non-zero exit prints one line to stderr.
 *
 * Plain C, no dependencies. Built static by domU-agent/native/build.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>

#define PROC_MAGIC 0x9fa0
#define NFIELDS 9
#define MAXFORMS 8
#define EXIT_UNSUPPORTED 3

static const char *const FIELD[NFIELDS - 1] = {
	"MemTotal", "MemFree", "Buffers", "Cached", "SwapTotal", "SwapFree", "MemAvailable", "Committed_AS",
};

struct form {
	int64_t lo, hi;
	int64_t c[NFIELDS];
};

static struct form forms[MAXFORMS];
static int nforms = -1; /* -1: no watch armed */

static const char *meminfo_path; /* -m: with a watch to run, a refused trigger is not fatal */
static int psi = -1;

static void die(int code, const char *what, int err)
{
	char line[320];
	int n = snprintf(line, sizeof line, "xmem-psi-trigger: %s%s%s\n", what, err ? ": " : "", err ? strerror(err) : "");
	if (n > 0)
		(void)!write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
	_exit(code);
}

/* One line to stdout; a closed pipe means the agent is gone. */
static void say(const char *s)
{
	size_t len = strlen(s);
	for (;;) {
		ssize_t n = write(1, s, len);
		if (n == (ssize_t)len)
			return;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EPIPE)
			_exit(0);
		die(1, "writing to stdout", n < 0 ? errno : EIO);
	}
}

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int has_sys_resource(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) != 0)
		return 0;
	return (d[CAP_SYS_RESOURCE / 32].effective >> (CAP_SYS_RESOURCE % 32)) & 1;
}

static unsigned long parse_num(const char *flag, const char *s, unsigned long min, unsigned long max)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max || *s == '-') {
		char msg[160];
		snprintf(msg, sizeof msg, "%s: expected a number from %lu to %lu, got \"%.40s\"", flag, min, max, s);
		die(2, msg, 0);
	}
	return v;
}

/* Whole file from offset 0 (procfs/sysfs regenerate the text on each read at 0). */
static ssize_t read_all(int fd, char *buf, size_t size)
{
	size_t len = 0;
	while (len < size - 1) {
		ssize_t n = pread(fd, buf + len, size - 1 - len, (off_t)len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return (ssize_t)len;
}

/* Reads the nine values; 0 when all were found, -1 otherwise (then the agent looks itself). */
static int sample(int meminfo_fd, int balloon_fd, int64_t v[NFIELDS])
{
	static char buf[16384];
	int found = 0;
	ssize_t len = read_all(meminfo_fd, buf, sizeof buf);
	if (len <= 0)
		return -1;
	for (char *line = buf; line && *line; ) {
		char *next = strchr(line, '\n');
		char *colon = strchr(line, ':');
		if (colon && (!next || colon < next)) {
			size_t klen = (size_t)(colon - line);
			for (int i = 0; i < NFIELDS - 1; i++) {
				if (strlen(FIELD[i]) == klen && memcmp(line, FIELD[i], klen) == 0) {
					char *p = colon + 1;
					while (*p == ' ' || *p == '\t')
						p++;
					if (*p < '0' || *p > '9')
						return -1;
					int64_t n = 0;
					for (; *p >= '0' && *p <= '9'; p++) {
						if (n > (INT64_MAX - 9) / 10)
							return -1;
						n = n * 10 + (*p - '0');
					}
					if (!(found & (1 << i)))
						v[i] = n;
					found |= 1 << i;
					break;
				}
			}
		}
		line = next ? next + 1 : NULL;
	}
	if (found != (1 << (NFIELDS - 1)) - 1)
		return -1;
	v[NFIELDS - 1] = 0;
	if (balloon_fd >= 0) {
		char b[32];
		if (read_all(balloon_fd, b, sizeof b) > 0 && b[0] >= '0' && b[0] <= '9')
			v[NFIELDS - 1] = strtoll(b, NULL, 10);
	}
	return 0;
}

static int outside(const int64_t v[NFIELDS])
{
	for (int f = 0; f < nforms; f++) {
		int64_t s = 0;
		for (int i = 0; i < NFIELDS; i++)
			s += forms[f].c[i] * v[i];
		if (s < forms[f].lo || s > forms[f].hi)
			return 1;
	}
	return 0;
}

/* "w" or "w lo hi c0..c8 ..."; returns 0, or -1 for a malformed line (ignored: no watch). */
static int command(char *line)
{
	if (line[0] != 'w' || (line[1] != '\0' && line[1] != ' '))
		return -1;
	int64_t nums[MAXFORMS * (NFIELDS + 2)];
	int n = 0;
	char *p = line + 1;
	for (;;) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		if (n == (int)(sizeof nums / sizeof nums[0]))
			return -1;
		char *end;
		errno = 0;
		long long x = strtoll(p, &end, 10);
		if (errno || end == p || (*end && *end != ' '))
			return -1;
		nums[n++] = x;
		p = end;
	}
	if (n % (NFIELDS + 2))
		return -1;
	nforms = n ? n / (NFIELDS + 2) : -1;
	for (int f = 0; f < nforms; f++) {
		const int64_t *q = nums + f * (NFIELDS + 2);
		forms[f].lo = q[0];
		forms[f].hi = q[1];
		memcpy(forms[f].c, q + 2, sizeof forms[f].c);
	}
	return 0;
}

/* Opens the PSI file and writes the trigger; 0, or an exit code and a message. */
static int arm(const char *path, unsigned long stall_us, unsigned long window_us, char *why, size_t size)
{
	psi = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (psi < 0) {
		int e = errno;
		snprintf(why, size, "cannot open %.200s for a trigger: %s", path, strerror(e));
		return e == ENOENT || e == EACCES || e == EPERM || e == EOPNOTSUPP || e == EROFS ? EXIT_UNSUPPORTED : 1;
	}
	/* A trigger written to anything but procfs (a scripted tree, a copied file) would only
	 * overwrite it. */
	struct statfs sf;
	if (fstatfs(psi, &sf) != 0 || sf.f_type != PROC_MAGIC) {
		close(psi);
		psi = -1;
		snprintf(why, size, "%.200s is not on procfs: no trigger possible", path);
		return EXIT_UNSUPPORTED;
	}
	char trig[64];
	int tlen = snprintf(trig, sizeof trig, "some %lu %lu", stall_us, window_us);
	if (write(psi, trig, (size_t)tlen + 1) < 0) {
		int e = errno;
		close(psi);
		psi = -1;
		if (e == EINVAL && window_us % 2000000 && !has_sys_resource())
			snprintf(why, size, "kernel refused trigger \"%s\": windows that are not a multiple of 2 s need CAP_SYS_RESOURCE: %s", trig, strerror(e));
		else
			snprintf(why, size, "kernel refused trigger \"%s\" on %.200s: %s", trig, path, strerror(e));
		return e == EINVAL || e == EOPNOTSUPP || e == EACCES || e == EPERM || e == ENOENT || e == EBADF ? EXIT_UNSUPPORTED : 1;
	}
	return 0;
}

static void usage(void)
{
	die(2, "usage: xmem-psi-trigger [-p pressure_file] [-s stall_us] [-w window_us] [-m meminfo -i interval_ms [-b balloon_current_kb]]", 0);
}

int main(int argc, char **argv)
{
	const char *psi_path = "/proc/pressure/memory", *balloon_path = NULL;
	unsigned long stall_us = 1, window_us = 500000, interval_ms = 1000;
	int opt;

	opterr = 0; /* one line of our own, not getopt's */
	while ((opt = getopt(argc, argv, "p:s:w:m:b:i:")) != -1) {
		switch (opt) {
		case 'p': psi_path = optarg; break;
		case 's': stall_us = parse_num("-s", optarg, 1, 10000000); break;
		case 'w': window_us = parse_num("-w", optarg, 1, 10000000); break;
		case 'm': meminfo_path = optarg; break;
		case 'b': balloon_path = optarg; break;
		case 'i': interval_ms = parse_num("-i", optarg, 10, 3600000); break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if (stall_us > window_us)
		stall_us = window_us; /* the kernel refuses a threshold above the window */

	/* Never outlive the agent: its end of the pipes closing ends the loop (a parent that died
	 * before this point is seen that way too); the death signal covers pipes somehow still
	 * held elsewhere. (No getppid() == 1 test: the agent may itself be a container's init.) */
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGTERM);

	char why[320] = "";
	int code = arm(psi_path, stall_us, window_us, why, sizeof why);
	if (code && !meminfo_path)
		die(code, why, 0);
	if (code) {
		/* The watch still saves the agent its meminfo sampling: say why, and go on. */
		char line[360];
		int n = snprintf(line, sizeof line, "xmem-psi-trigger: %s; watching meminfo only\n", why);
		if (n > 0)
			(void)!write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
	}

	int meminfo = -1, balloon = -1;
	if (meminfo_path) {
		meminfo = open(meminfo_path, O_RDONLY | O_CLOEXEC);
		if (meminfo < 0) {
			int e = errno;
			char msg[300];
			snprintf(msg, sizeof msg, "cannot open %.200s", meminfo_path);
			die(EXIT_UNSUPPORTED, msg, e);
		}
		if (balloon_path)
			balloon = open(balloon_path, O_RDONLY | O_CLOEXEC); /* absent outside Xen: value 0 */
	}

	int fl = fcntl(0, F_GETFL);
	if (fl >= 0)
		fcntl(0, F_SETFL, fl | O_NONBLOCK);
	if (psi >= 0) {
		say("ready\n");
	} else {
		char line[360];
		snprintf(line, sizeof line, "ready mem %s\n", why);
		say(line);
	}

	static char in[8192];
	size_t inlen = 0;
	int64_t next_sample = 0;
	for (;;) {
		int timeout = -1;
		if (meminfo >= 0 && nforms >= 0) {
			int64_t wait = next_sample - now_ms();
			timeout = wait < 0 ? 0 : wait > INT_MAX ? INT_MAX : (int)wait;
		}
		struct pollfd p[3] = {
			{ .fd = psi, .events = POLLPRI }, /* -1 (ignored by poll) without a trigger */
			{ .fd = 0, .events = POLLIN },
			{ .fd = 1, .events = 0 }, /* POLLERR/POLLHUP when the reader is gone */
		};
		int r = poll(p, 3, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die(1, "poll", errno);
		}
		if (p[2].revents & (POLLERR | POLLHUP | POLLNVAL))
			_exit(0);
		if (p[0].revents & POLLERR)
			die(1, "the PSI trigger reported an error (file gone?)", 0);
		if (p[0].revents & POLLPRI)
			say("s\n");
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(0, in + inlen, sizeof in - 1 - inlen);
			if (n == 0)
				_exit(0);
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				_exit(0);
			if (n > 0) {
				inlen += (size_t)n;
				char *start = in, *nl;
				while ((nl = memchr(start, '\n', inlen - (size_t)(start - in)))) {
					*nl = '\0';
					int was_on = nforms >= 0;
					if (command(start) != 0) {
						nforms = -1;
						say("e\n");
					}
					/* A watch switched on samples after one interval: the agent has just
					 * read meminfo itself, and a helper that keeps disagreeing with it then
					 * costs one event per interval, never a tight loop. */
					else if (!was_on)
						next_sample = now_ms() + (int64_t)interval_ms;
					start = nl + 1;
				}
				inlen -= (size_t)(start - in);
				memmove(in, start, inlen);
				if (inlen == sizeof in - 1)
					inlen = 0; /* an endless line: drop it */
			}
		}
		if (meminfo >= 0 && nforms >= 0 && now_ms() >= next_sample) {
			int64_t v[NFIELDS];
			next_sample = now_ms() + (int64_t)interval_ms;
			if (sample(meminfo, balloon, v) != 0 || outside(v)) {
				nforms = -1;
				say("m\n");
			}
		}
	}
}
