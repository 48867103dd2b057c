/* null-relay: the floor of an epoll reverse proxy, for bench/run (proxy "relay").
 *
 * It does only what every proxy must: for each client connection it opens one connection to
 * the origin, and copies bytes each way as they arrive, one read and one write per direction
 * (plus epoll_wait). No HTTP: no parsing, no validation, no rules, no logging, no pooling.
 * Nothing real can be run this way; its throughput is the most any proxy built on the same
 * system calls can reach on the machine, which is what BENCHMARKS.md compares the targets to.
 *
 *   null-relay LISTEN_PORT ORIGIN_PORT [WORKERS]     (loopback only)
 *
 * Workers are processes with a SO_REUSEPORT listener each, as nginx's are; they exit with
 * their parent (PR_SET_PDEATHSIG), so stopping the parent stops them all.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_FD 65536

static int peer[MAX_FD];
static char buf[65536];

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int listen_on(int port) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    struct sockaddr_in a = loopback(port);
    setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 4096) != 0) {
        perror("null-relay: listen");
        exit(1);
    }
    return s;
}

/* A blocking connection to the origin, or -1. */
static int dial(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = loopback(port);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0 || s >= MAX_FD) {
        perror("null-relay: connect");
        if (s >= 0) close(s);
        return -1;
    }
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return s;
}

static void watch(int ep, int fd) {
    struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

static void close_pair(int fd) {
    int p = peer[fd];
    peer[fd] = -1;
    close(fd);
    if (p >= 0) {
        peer[p] = -1;
        close(p);
    }
}

static void worker(int listen_port, int origin_port) {
    int l = listen_on(listen_port), ep = epoll_create1(0), one = 1;
    struct epoll_event events[256];
    for (int i = 0; i < MAX_FD; i++) peer[i] = -1;
    watch(ep, l);
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd, c;
            if (fd == l) {
                while ((c = accept4(l, NULL, NULL, 0)) >= 0) {
                    int o = c < MAX_FD ? dial(origin_port) : -1;
                    if (o < 0) {
                        close(c);
                        continue;
                    }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    peer[c] = o;
                    peer[o] = c;
                    watch(ep, c);
                    watch(ep, o);
                }
                continue;
            }
            if (peer[fd] < 0) continue; /* closed earlier in this batch */
            /* Level-triggered: one read per readiness; the socket is readable, so it does not
             * block. The write is blocking: on loopback the peer's buffer takes these sizes. */
            ssize_t r = read(fd, buf, sizeof buf), off = 0;
            if (r <= 0) {
                close_pair(fd);
                continue;
            }
            while (off < r) {
                ssize_t w = write(peer[fd], buf + off, r - off);
                if (w <= 0) break;
                off += w;
            }
            if (off < r) close_pair(fd);
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: null-relay LISTEN_PORT ORIGIN_PORT [WORKERS]\n");
        return 2;
    }
    int listen_port = atoi(argv[1]), origin_port = atoi(argv[2]);
    int workers = argc > 3 ? atoi(argv[3]) : 2;
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < workers; i++) {
        if (fork() == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() == 1) return 0;
            worker(listen_port, origin_port);
            return 0;
        }
    }
    while (wait(NULL) > 0) {
    }
    return 0;
}
