# attack.py BOX HAVENCTL RUN_DIR WORKER_PID HOSTILE — what a hostile QEMU
# tries (test-lab-vm-box.sh), as QEMU's uid: every other VM's sockets and
# havend's stop of web2; with HOSTILE 1 also its own worker: worker.sock
# removed and replaced by its own, which serves a forged WorkerHello to
# every havend that connects; ptrace and SIGKILL of the worker. One line
# per attempt ("did ...", "reached ...", "refused ...") in BOX/attack.UID.
import ctypes, glob, os, signal, socket, struct, subprocess, sys

box, havenctl, run_dir, worker, hostile = sys.argv[1:6]
worker = int(worker)
mine = os.path.basename(run_dir)
lines = []


def out():
    with open("%s/attack.%d" % (box, os.getuid()), "w") as f:
        f.write("\n".join(lines) + "\n")


# A run directory is not listed by others: its sockets are named.
for path in sorted(d + "/" + n for d in glob.glob("/run/haven/vm/*")
                   if os.path.basename(d) != mine
                   for n in ("qmp.sock", "nbd.sock", "worker.sock")):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        lines.append("reached %s" % path)
    except OSError as e:
        lines.append("refused %s: %s" % (path, e.strerror))
    s.close()
r = subprocess.run([havenctl, "vm", "stop", "web2"], capture_output=True,
                   text=True)
lines.append("havenctl vm stop web2: exit %d: %s" % (r.returncode,
             (r.stderr or r.stdout).strip().replace("\n", " ")))
if hostile != "1":
    out()
    sys.exit(0)


def varint(n):
    b = b""
    while True:
        b += bytes([(n & 0x7f) | (0x80 if n > 0x7f else 0)])
        n >>= 7
        if not n:
            return b


def field(num, wire, val):
    if wire == 0:
        return varint(num << 3) + varint(val)
    return varint(num << 3 | 2) + varint(len(val)) + val


def hello():
    # WorkerHello{spec{uuid, name, uid, gid}, RUNNING, qemu_pid, worker_pid
    # (its own: havend checks it against the peer), a huge generation}.
    spec = (field(1, 2, mine.encode()) + field(2, 2, b"web1") +
            field(10, 0, os.getuid()) + field(11, 0, os.getgid()))
    msg = (field(1, 2, spec) + field(2, 0, 3) + field(3, 0, os.getpid()) +
           field(4, 0, os.getpid()) + field(5, 0, 1 << 40))
    return struct.pack(">HBBHHI", 0x4856, 1, 0, 205, 0, len(msg)) + msg


ws = run_dir + "/worker.sock"
srv = None
try:
    os.unlink(ws)
    lines.append("did unlink worker.sock")
except OSError as e:
    lines.append("refused unlink worker.sock: %s" % e.strerror)
try:
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(run_dir + "/.impostor")
    os.rename(run_dir + "/.impostor", ws)
    srv.listen(4)
    lines.append("did replace worker.sock")
except OSError as e:
    lines.append("refused replace worker.sock: %s" % e.strerror)
    srv = None
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                        ctypes.c_void_p]
if libc.ptrace(16, worker, None, None) == 0:        # PTRACE_ATTACH
    lines.append("did ptrace the worker %d" % worker)
    libc.ptrace(17, worker, None, None)             # PTRACE_DETACH
else:
    lines.append("refused ptrace the worker %d: %s" % (worker,
                 os.strerror(ctypes.get_errno())))
try:
    os.kill(worker, signal.SIGKILL)
    lines.append("did kill the worker %d" % worker)
except OSError as e:
    lines.append("refused kill the worker %d: %s" % (worker, e.strerror))
out()
# The impostor serves every havend that connects, until the VM goes.
while srv is not None:
    c, _ = srv.accept()
    try:
        c.sendall(hello())
    except OSError:
        pass
    with open("%s/impostor.%d" % (box, os.getuid()), "a") as f:
        f.write("served a forged hello\n")
