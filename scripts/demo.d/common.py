# SPDX-License-Identifier: Apache-2.0
"""Bits shared by the demo processes."""
import ctypes
import ctypes.util


def set_process_name(name):
    """Sets the kernel comm of the calling thread (threads created later inherit it), so
    redtap can name the service by process (services: [{name: shop, process: shop}])."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(15, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)  # PR_SET_NAME
    except OSError:
        pass
