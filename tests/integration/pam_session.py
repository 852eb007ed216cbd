#!/usr/bin/env python3
"""Open and close one PAM session in this process and check what the
modules leave behind: open file descriptors and threads.

Run it with libpam_wrapper preloaded (PAM_WRAPPER=1 and
PAM_WRAPPER_SERVICE_DIR set), as pamtester is run.  pamtester cannot show
this because the process ends with the session.

Usage: pam_session.py SERVICE USER [VARIABLE...]
Prints each VARIABLE of the PAM environment after open_session, the
return codes and "fds=same|CHANGED threads=same|CHANGED" and
exits 0 only when the session opened and nothing was left behind.
"""

import ctypes
import os
import sys

PAM_SUCCESS = 0


class PamConv(ctypes.Structure):
    _fields_ = [("conv", ctypes.c_void_p), ("appdata_ptr", ctypes.c_void_p)]


def snapshot():
    fds = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:
            pass  # the descriptor listdir itself used
    return fds, sorted(os.listdir("/proc/self/task"))


def main():
    service, user = sys.argv[1].encode(), sys.argv[2].encode()
    # Load libpam into the global namespace, then look the functions up
    # there, so that the preloaded pam_wrapper's pam_start is the one used.
    ctypes.CDLL("libpam.so.0", mode=ctypes.RTLD_GLOBAL)
    pam = ctypes.CDLL(None)
    pam.pam_start.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                              ctypes.POINTER(PamConv),
                              ctypes.POINTER(ctypes.c_void_p)]
    handle = ctypes.c_void_p()
    conversation = PamConv(None, None)
    status = pam.pam_start(service, user, ctypes.byref(conversation),
                           ctypes.byref(handle))
    if status != PAM_SUCCESS:
        print(f"pam_start failed with {status}")
        return 1

    before = snapshot()
    opened = pam.pam_open_session(handle, 0)
    after_open = snapshot()
    # The module's PAM environment, for a test to check an export.
    pam.pam_getenv.restype = ctypes.c_char_p
    for name in sys.argv[3:]:
        value = pam.pam_getenv(handle, name.encode())
        print(f"{name}={value.decode() if value else ''}")
    closed = pam.pam_close_session(handle, 0)
    pam.pam_end(handle, opened)

    fds_same = before[0] == after_open[0]
    threads_same = before[1] == after_open[1]
    print(f"open_session={opened} close_session={closed} "
          f"fds={'same' if fds_same else 'CHANGED'} "
          f"threads={'same' if threads_same else 'CHANGED'}")
    if not fds_same:
        print(f"before: {before[0]}\nafter: {after_open[0]}")
    return 0 if opened == PAM_SUCCESS and fds_same and threads_same else 1


if __name__ == "__main__":
    sys.exit(main())
