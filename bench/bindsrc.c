/* LD_PRELOAD shim for the load generator: binds every IPv4 socket to $BIND_SRC before
 * connect(), so wrk (which has no source-address option) connects from e.g. 127.0.0.2 —
 * a distinct client address on loopback, all of 127.0.0.0/8 being local on Linux.
 * Built by bench/proxy.sh: gcc -O2 -shared -fPIC -o bindsrc.so bindsrc.c -ldl */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
  static int (*real)(int, const struct sockaddr *, socklen_t);
  if (!real) real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
  const char *src = getenv("BIND_SRC");
  if (src && addr && addr->sa_family == AF_INET) {
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    if (inet_pton(AF_INET, src, &sin.sin_addr) == 1) bind(fd, (struct sockaddr *)&sin, sizeof sin);
  }
  return real(fd, addr, len);
}
