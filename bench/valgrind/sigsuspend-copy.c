/* LD_PRELOAD shim for bench/instructions.sh. libdispatch's main-thread loop (`dispatch_main`, which
 * Swift's async main ends in) calls sigsuspend() with a mask in read-only memory; Valgrind 3.19's
 * wrapper of rt_sigsuspend writes into the mask it is given and dies with SIGSEGV (fixed in later
 * Valgrind releases). Handing the kernel a writable copy changes nothing else. */
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, sizeof(unsigned long));
}
