"""berth-runtime: an OCI runtime with runc's command line and state-directory contract.

Standard library only (this is the container-start path). Layout, one job per module:

    cli          hand-written runc-style argument parsing; errors -> stderr + --log (text/json)
    commands     one function per verb (create, start, run, state, kill, delete, list, exec, ps, pause,
                 resume, events, update, spec, features)
    container    the lifecycle behind the verbs (state machine: creating/created/running/paused/stopped)
    state        <root>/<id>/{state.json, exec.fifo}; pid + start time identify the init
    process      fork chain: runtime -> [intermediate for user namespaces] -> init (never re-exec)
    init         code run in the forked children: the container's init and `exec` processes
    channel      typed JSON messages (+ SCM_RIGHTS) over a SOCK_SEQPACKET socketpair
    rootfs       propagation, mounts (resolved inside the rootfs), pivot_root, masked/readonly paths
    devices      /dev nodes and symlinks;  hooks: OCI hooks;  tty: ptys and console sockets
    trampoline   execve through a sealed memfd (CVE-2019-5736);  warm: cgroup-migration warm-up
    cgroup       lazy, optional access to berth.cgroups;  spec: default config.json;  features
    seccomp_program  linux.seccomp -> BPF (berth.seccomp's cache), by init itself unless in a user namespace
    jsonio       JSON via _json without importing json/re/enum
"""
