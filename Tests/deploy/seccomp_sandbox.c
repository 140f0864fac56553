/* Applies, to one command, what three settings of the units in deploy/systemd make systemd 252 do,
 * so the daemons can be run under them without systemd (Tests/deploy/sandbox_smoke.sh):
 *   --mdwe         MemoryDenyWriteExecute=yes: mmap with PROT_WRITE|PROT_EXEC, mprotect or
 *                  pkey_mprotect adding PROT_EXEC, and shmat with SHM_EXEC fail with EPERM
 *   --families     RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX: socket() of any other family
 *                  fails with EAFNOSUPPORT
 *   --allow FILE   SystemCallFilter= as an allow list (x86_64 syscall numbers, one a line);
 *                  anything else traps with SIGSYS (systemd's default action kills the same way),
 *   --errno        ... or, with this, fails with EPERM (SystemCallErrorNumber=EPERM)
 * A foreign architecture's calls kill the process (SystemCallArchitectures=native). x86_64 only.
 * Usage: seccomp_sandbox [--mdwe] [--families] [--errno] [--allow FILE] -- COMMAND ARGS... */
#if !defined(__x86_64__)
#error "x86_64 only: the filter compares x86_64 system-call numbers"
#endif
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARG_LO(n) (offsetof(struct seccomp_data, args) + 8 * (n))
static struct sock_filter prog[4096];
static int n;
static void put(struct sock_filter f) { if (n >= 4096) { fprintf(stderr, "filter too long\n"); exit(1); } prog[n++] = f; }
#define S(code, k) put((struct sock_filter)BPF_STMT(code, k))
#define J(code, k, jt, jf) put((struct sock_filter)BPF_JUMP(code, k, jt, jf))

int main(int argc, char **argv) {
    int mdwe = 0, eperm = 0, families = 0, i = 1; const char *allow = NULL;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--mdwe")) mdwe = 1;
        else if (!strcmp(argv[i], "--errno")) eperm = 1;
        else if (!strcmp(argv[i], "--families")) families = 1;
        else if (!strcmp(argv[i], "--allow") && i + 1 < argc) allow = argv[++i];
        else if (!strcmp(argv[i], "--")) { i++; break; }
        else break;
    }
    if (i >= argc) { fprintf(stderr, "usage: seccomp_sandbox [--mdwe] [--families] [--errno] [--allow FILE] -- cmd args\n"); return 2; }
    S(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    J(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    S(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);  /* SystemCallArchitectures=native */
    if (mdwe) {
        /* mmap: (prot & (W|X)) == (W|X) -> EPERM */
        S(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
        J(BPF_JMP | BPF_JEQ | BPF_K, __NR_mmap, 0, 4);
        S(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2));
        S(BPF_ALU | BPF_AND | BPF_K, PROT_WRITE | PROT_EXEC);
        J(BPF_JMP | BPF_JEQ | BPF_K, PROT_WRITE | PROT_EXEC, 0, 1);
        S(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
        /* mprotect, pkey_mprotect: prot & X -> EPERM */
        S(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
        J(BPF_JMP | BPF_JEQ | BPF_K, __NR_mprotect, 1, 0);
        J(BPF_JMP | BPF_JEQ | BPF_K, __NR_pkey_mprotect, 0, 4);
        S(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2));
        S(BPF_ALU | BPF_AND | BPF_K, PROT_EXEC);
        J(BPF_JMP | BPF_JEQ | BPF_K, PROT_EXEC, 0, 1);
        S(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
        /* shmat: shmflg & SHM_EXEC -> EPERM */
        S(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
        J(BPF_JMP | BPF_JEQ | BPF_K, __NR_shmat, 0, 4);
        S(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2));
        S(BPF_ALU | BPF_AND | BPF_K, SHM_EXEC);
        J(BPF_JMP | BPF_JEQ | BPF_K, SHM_EXEC, 0, 1);
        S(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
    }
    if (families) {
        S(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
        J(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 5);
        S(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0));
        J(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 3, 0);
        J(BPF_JMP | BPF_JEQ | BPF_K, AF_INET, 2, 0);
        J(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 1, 0);
        S(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAFNOSUPPORT);
    }
    S(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    if (allow) {
        FILE *f = fopen(allow, "r"); if (!f) { perror(allow); return 2; }
        unsigned nr;
        while (fscanf(f, "%u", &nr) == 1) {
            J(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1);
            S(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        }
        fclose(f);
        S(BPF_RET | BPF_K, eperm ? (SECCOMP_RET_ERRNO | EPERM) : SECCOMP_RET_TRAP);
    } else {
        S(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    }
    struct sock_fprog fprog = { .len = (unsigned short)n, .filter = prog };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) { perror("no_new_privs"); return 1; }
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog)) { perror("seccomp"); return 1; }
    execvp(argv[i], argv + i);
    perror("execvp"); return 127;
}
