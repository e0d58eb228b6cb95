/*
 * xmem-xc: the dom0 service's long-lived line to the hypervisor (libxenctrl), so a balancing
 * pass costs two hypercalls instead of forking `xl list` (seconds each in a slow dom0).
 *
 * One request per line on stdin, one JSON line per request on stdout:
 *   info              -> {"ok":true,"totalKib":N,"freeKib":N}
 *   list              -> {"ok":true,"domains":[{"domid":N,"totKib":N,"maxKib":N,"flags":N},...]}
 *   maxmem DOMID KIB  -> {"ok":true}                  (Xen's max_pages, as `xl mem-max` sets it)
 *   anything else     -> {"ok":false,"errno":"EINVAL","error":"..."}
 * A failed hypercall answers {"ok":false,"errno":NAME,"error":TEXT} and the helper goes on.
 * It exits 0 at end of input, and 1 with one line on stderr if Xen cannot be opened at all.
 *
 * Build: gcc -O2 -o xmem-xc xmem-xc.c -lxenctrl   (headers: libxen-dev / xen-devel)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xenctrl.h>

#define PAGE_KIB 4u
#define MAX_DOMS 1024u
#define LINE_MAX_BYTES 256

static const char *errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EBUSY: return "EBUSY";
    case EAGAIN: return "EAGAIN";
    case ENOSYS: return "ENOSYS";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return "EIO";
  }
}

static void fail(int e, const char *what) {
  printf("{\"ok\":false,\"errno\":\"%s\",\"error\":\"%s: %s\"}\n", errno_name(e), what, strerror(e));
}

static void do_info(xc_interface *xch) {
  xc_physinfo_t pi = {0};
  if (xc_physinfo(xch, &pi) != 0) return fail(errno, "physinfo");
  printf("{\"ok\":true,\"totalKib\":%" PRIu64 ",\"freeKib\":%" PRIu64 "}\n",
         (uint64_t)pi.total_pages * PAGE_KIB, (uint64_t)pi.free_pages * PAGE_KIB);
}

static void do_list(xc_interface *xch, xc_domaininfo_t *info) {
  int n = xc_domain_getinfolist(xch, 0, MAX_DOMS, info);
  if (n < 0) return fail(errno, "getdomaininfolist");
  fputs("{\"ok\":true,\"domains\":[", stdout);
  for (int i = 0; i < n; i++) {
    printf("%s{\"domid\":%u,\"totKib\":%" PRIu64 ",\"maxKib\":%" PRIu64 ",\"flags\":%u}", i ? "," : "",
           (unsigned)info[i].domain, (uint64_t)info[i].tot_pages * PAGE_KIB,
           (uint64_t)info[i].max_pages * PAGE_KIB, (unsigned)info[i].flags);
  }
  fputs("]}\n", stdout);
}

static void do_maxmem(xc_interface *xch, const char *args) {
  unsigned domid;
  unsigned long long kib;
  char extra;
  if (sscanf(args, "%u %llu %c", &domid, &kib, &extra) != 2 || domid >= 0x7FF0u) {
    printf("{\"ok\":false,\"errno\":\"EINVAL\",\"error\":\"usage: maxmem DOMID KIB\"}\n");
    return;
  }
  if (xc_domain_setmaxmem(xch, domid, kib) != 0) return fail(errno, "setmaxmem");
  puts("{\"ok\":true}");
}

int main(void) {
  xc_interface *xch = xc_interface_open(NULL, NULL, 0);
  if (!xch) {
    fprintf(stderr, "xmem-xc: cannot open the hypervisor interface (not dom0, or privcmd missing): %s\n", strerror(errno));
    return 1;
  }
  xc_domaininfo_t *info = calloc(MAX_DOMS, sizeof *info);
  if (!info) return 1;
  char line[LINE_MAX_BYTES];
  while (fgets(line, sizeof line, stdin)) {
    size_t len = strlen(line);
    if (len == sizeof line - 1 && line[len - 1] != '\n') {
      int c;
      while ((c = getchar()) != EOF && c != '\n') {}
      printf("{\"ok\":false,\"errno\":\"E2BIG\",\"error\":\"request line too long\"}\n");
    } else {
      line[strcspn(line, "\r\n")] = '\0';
      if (strcmp(line, "info") == 0) do_info(xch);
      else if (strcmp(line, "list") == 0) do_list(xch, info);
      else if (strncmp(line, "maxmem ", 7) == 0) do_maxmem(xch, line + 7);
      else printf("{\"ok\":false,\"errno\":\"EINVAL\",\"error\":\"unknown request\"}\n");
    }
    if (fflush(stdout) != 0) break; /* the service went away */
  }
  free(info);
  xc_interface_close(xch);
  return 0;
}
